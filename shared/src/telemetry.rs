//! Log set-up. Log lines carry method, route, status and timing, never bodies, codes or tokens.

use tracing_subscriber::EnvFilter;

/// `with_time` is off on Lambda, where CloudWatch stamps every line itself.
pub fn init(with_time: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if with_time {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}
