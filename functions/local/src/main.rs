//! The `imagemcp` binary: the embedded server (`serve`) and the admin commands (`keys create`,
//! `users set-password`, `kek rotate`).

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Parser, Subcommand};
use imagemcp::settings::{LogFormat, ServeArgs, Settings, StoreArgs, environment};

#[derive(Parser)]
#[command(
    name = "imagemcp",
    version,
    about = "On-brand images with OpenAI, as an MCP server and a REST API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once at start-up: the size of the `serve` variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the server: MCP at /mcp, REST at /v1, everything in one process.
    Serve(ServeArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage the key-encryption key (KEK) that protects data at rest.
    Kek {
        #[command(subcommand)]
        command: KekCommand,
    },
}

#[derive(Subcommand)]
enum KekCommand {
    /// Make a new KEK (when it is kept in the data directory) and re-wrap every data key with the
    /// current KEK, after which older KEKs are no longer needed.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set an account's password, read from the first line of stdin (never from the command line,
    /// which other users of the machine can see), so it can sign in to the web pages: the consent
    /// page, and the one-time links that reveal a key made over MCP.
    SetPassword {
        #[command(flatten)]
        store: StoreArgs,
        /// The account's email; the local administrator's by default.
        #[arg(long, default_value = imagemcp_app::accounts::LOCAL_ADMIN_EMAIL)]
        email: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print it, alone, on stdout. It is shown only this once.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::from_serve(&args, environment)?;
            init_tracing(settings.log_format);
            let listener = tokio::net::TcpListener::bind(settings.addr).await?;
            imagemcp::serve(listener, settings, imagemcp::shutdown_signal()).await
        }
        Command::Keys {
            command: KeysCommand::Create { store, label },
        } => {
            init_tracing(LogFormat::Text);
            let settings = Settings::from_store(&store, environment)?;
            let key = imagemcp::create_key(&settings, &label).await?;
            #[allow(clippy::print_stdout)]
            {
                println!("{key}");
            }
            Ok(())
        }
        Command::Users {
            command: UsersCommand::SetPassword { store, email },
        } => {
            init_tracing(LogFormat::Text);
            let settings = Settings::from_store(&store, environment)?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let email = imagemcp::set_password(&settings, &email, password).await?;
            #[allow(clippy::print_stdout)]
            {
                println!("password set for {email}");
            }
            Ok(())
        }
        Command::Kek {
            command: KekCommand::Rotate { store },
        } => {
            init_tracing(LogFormat::Text);
            let settings = Settings::from_store(&store, environment)?;
            let (id, count) = imagemcp::rotate_kek(&settings).await?;
            #[allow(clippy::print_stdout)]
            {
                println!("current KEK: {id}; {count} data key(s) re-wrapped");
            }
            Ok(())
        }
    }
}
