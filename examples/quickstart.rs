use axum::{Router, routing::get};
use socketgate::socketio::{SocketIo, SocketIoConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    serve("127.0.0.1:3000").await
}

pub async fn serve(addr: &str) -> std::io::Result<()> {
    let io = SocketIo::new(SocketIoConfig::default());
    io.ns("/", |socket| {
        socket.on("hello", |socket, mut event| {
            let name: String = event.data().unwrap_or_default();
            let _ = event.ack(&format!("hello, {name}"));
            let _ = socket.broadcast().emit("joined", &name);
        });
    });
    let app = Router::new().route("/", get(|| async { "ok" }));
    let app = app.layer(io.layer());
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await
}
