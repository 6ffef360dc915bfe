//! The command line shared by the peer servers: `--port P` (or `PORT` in
//! the environment); they always listen on 127.0.0.1.

use std::net::SocketAddr;

/// Port used when neither `--port` nor `PORT` is given.
pub const DEFAULT_PORT: u16 = 3000;

/// The loopback address to listen on, from `--port P` or `PORT`. Exits
/// with status 2 and a usage line on anything else.
pub fn listen_addr(name: &str) -> SocketAddr {
    match parse(std::env::args().skip(1), std::env::var("PORT").ok()) {
        Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
        Err(e) => {
            eprintln!("{name}: {e}; usage: {name} [--port P]");
            std::process::exit(2);
        }
    }
}

fn parse(mut args: impl Iterator<Item = String>, env: Option<String>) -> Result<u16, String> {
    let port = |s: &str| s.parse::<u16>().map_err(|_| format!("bad port {s:?}"));
    let mut chosen = env.as_deref().map(port).transpose()?;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args.next().ok_or("--port needs a value")?;
                chosen = Some(port(&v)?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(chosen.unwrap_or(DEFAULT_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> impl Iterator<Item = String> {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn port_from_flag_env_or_default() {
        assert_eq!(parse(args(&[]), None), Ok(DEFAULT_PORT));
        assert_eq!(parse(args(&[]), Some("4001".into())), Ok(4001));
        assert_eq!(
            parse(args(&["--port", "4002"]), Some("4001".into())),
            Ok(4002)
        );
        assert!(parse(args(&["--port"]), None).is_err());
        assert!(parse(args(&["--port", "x"]), None).is_err());
        assert!(parse(args(&["--verbose"]), None).is_err());
        assert!(parse(args(&[]), Some("70000".into())).is_err());
    }
}
