//! `imagemcp-aws-admin`: operator commands against a deployment's (or an emulator's) resources,
//! with the same environment as the functions. Not a Lambda function.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use imagemcp_app::auth::KeySpec;
use imagemcp_aws::{Clients, provision};
use imagemcp_core::ids::{JobId, OrgId};

#[derive(Parser)]
#[command(
    name = "imagemcp-aws-admin",
    about = "Operator commands for an imagemcp deployment on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, bucket and queues (for an emulator; production uses Terraform). Prints
    /// the queue URLs as `IMAGEMCP_QUEUE_URL=…` and `IMAGEMCP_DLQ_URL=…` lines.
    Provision {
        #[arg(long)]
        table: String,
        #[arg(long)]
        bucket: String,
        #[arg(long)]
        queue: String,
        #[arg(long, default_value_t = 3)]
        max_attempts: u32,
    },
    /// Create the first administrator (in the default organisation) if missing, and an API key
    /// with every scope for it. Prints the key alone; it is shown only this once.
    BootstrapKey {
        #[arg(long, default_value = "bootstrap")]
        label: String,
    },
    /// Enqueue a `ping` job of `items` items for the organisation and print it as JSON.
    PingJob {
        #[arg(long, default_value = imagemcp_app::auth::DEFAULT_ORG)]
        org: String,
        #[arg(long, default_value_t = 3)]
        items: u32,
    },
    /// Print a job as JSON.
    Job {
        #[arg(long, default_value = imagemcp_app::auth::DEFAULT_ORG)]
        org: String,
        id: String,
    },
}

#[allow(clippy::print_stdout)]
fn print(line: &str) {
    println!("{line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    match Cli::parse().command {
        Command::Provision {
            table,
            bucket,
            queue,
            max_attempts,
        } => {
            let clients = Clients::from_env(true).await;
            provision::create_table(&clients, &table)
                .await
                .context("creating the table")?;
            provision::create_bucket(&clients, &bucket)
                .await
                .context("creating the bucket")?;
            let urls =
                provision::create_queues(&clients, &queue, max_attempts, Duration::from_secs(180))
                    .await
                    .context("creating the queues")?;
            print(&format!("IMAGEMCP_QUEUE_URL={}", urls.queue));
            print(&format!("IMAGEMCP_DLQ_URL={}", urls.dead_letters));
        }
        Command::BootstrapKey { label } => {
            let app = imagemcp_lambda::build().await?.app;
            let (admin, org) = app.accounts().ensure_local_admin().await?;
            let key = app
                .keys()
                .create(&admin.id, &org.id, KeySpec::full(&label))
                .await?;
            print(&key.secret);
        }
        Command::PingJob { org, items } => {
            let app = imagemcp_lambda::build().await?.app;
            let job = imagemcp_app::jobs::enqueue(
                app.jobs(),
                &OrgId::parse(&org)?,
                imagemcp_app::jobs::KIND_PING,
                items,
            )
            .await?;
            print(&serde_json::to_string(&job)?);
        }
        Command::Job { org, id } => {
            let app = imagemcp_lambda::build().await?.app;
            let job =
                imagemcp_app::jobs::get(app.jobs(), &OrgId::parse(&org)?, &JobId::parse(&id)?)
                    .await?;
            print(&serde_json::to_string(&job)?);
        }
    }
    Ok(())
}
