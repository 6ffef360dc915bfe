//! The `socketgate` binary: read the settings (flags, `SOCKETGATE_*`
//! variables, a TOML file), build the gateway, serve.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use socketgate::gateway;
use socketgate::settings::{LogFormat, Settings};

/// A socket.io-compatible realtime gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A TOML settings file; flags and SOCKETGATE_* variables override it.
    #[arg(long, env = "SOCKETGATE_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Settings files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Prints a settings file with every setting, its documentation and its
    /// default.
    Default,
    /// Checks a settings file (and the flags and variables given with it).
    Check {
        /// The file.
        file: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let file = match &cli.command {
        Some(Command::Config(ConfigCommand::Default)) => {
            print!("{}", Settings::default_file());
            return std::process::ExitCode::SUCCESS;
        }
        Some(Command::Config(ConfigCommand::Check { file })) => Some(file.clone()),
        None => cli.config.clone(),
    };
    let from_file = match file.as_deref().map(Settings::from_file).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("socketgate: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let settings = cli.settings.clone().or(from_file);
    let config = match settings.gateway_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("socketgate: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::Config(ConfigCommand::Check { file })) = &cli.command {
        println!("{}: ok", file.display());
        return std::process::ExitCode::SUCCESS;
    }
    init_log(settings.log_format.unwrap_or(LogFormat::Text));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("socketgate: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let served: std::io::Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        // Served from a runtime worker: the main thread is not one, and
        // accepting there hands every new connection over to a worker across
        // threads (a futex wake-up and a context switch each time).
        tokio::spawn(gateway::serve(listener, config, gateway::shutdown_signal()))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("socketgate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): text with
/// colours only when stderr is a terminal, or one JSON object per line.
fn init_log(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
