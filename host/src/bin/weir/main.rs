//! The `weir` command: argument parsing and output only; everything else is the library.

mod redacted;
mod run;
mod udf_tool;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Stream processing on Kafka with WebAssembly UDFs over Apache Arrow",
    after_help = "Examples:\n  \
        weir validate examples/fraud/pipeline.toml     load the modules, check the schemas, print the plan\n  \
        weir run examples/fraud/pipeline.toml          run the pipeline (KAFKA_BOOTSTRAP_SERVERS picks the broker)\n  \
        weir demo examples/fraud/pipeline.toml         run it against an in-process broker with generated data\n  \
        weir udf inspect target/wasm32-wasip1/release/filter.wasm --input-schema \"count BIGINT\"\n  \
        weir udf test json_transactions.wasm --input sample.jsonl   run a module on sample records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as text, or as one JSON object per line (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline until it reaches its endingOffsets or is interrupted (Ctrl-C finishes the batch).
    Run {
        /// The pipeline file (TOML); several run side by side in one process, each with its own
        /// checkpoint (one query per sink, as in Spark).
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Progress output: JSON lines on stdout, a status line on the terminal, or both.
        #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
        progress: ProgressMode,
        /// Watch the UDF module files and swap in a changed module between batches, after checking it; a
        /// module that fails the checks is refused with a message and the running version stays.
        #[arg(long)]
        reload: bool,
        /// Serve Prometheus metrics and the health checks (/metrics, /health, /ready) on this address,
        /// e.g. 127.0.0.1:9464; overrides the file's `[metrics] listen`.
        #[arg(long, value_name = "ADDRESS:PORT")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Load the modules, check that the schemas compose from source to sink, and print the plan.
    Validate {
        /// The pipeline file (TOML).
        file: PathBuf,
    },
    /// Tools for UDF authors: what a module declares, and what it does to sample data.
    Udf {
        #[command(subcommand)]
        command: UdfCommand,
    },
    /// Tools for checkpoints.
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
    /// Print the files a file sink committed under its `path`, one per line, in batch order: the files
    /// readers of the output should read (a directory listing may also show a batch being written).
    Files {
        /// The file sink's directory.
        dir: PathBuf,
    },
    /// Run a pipeline against an in-process Kafka broker filled with generated transactions, and check the output.
    Demo {
        /// The pipeline file (TOML); it reads `transactions` and writes `results`.
        #[arg(default_value = "examples/fraud/pipeline.toml")]
        file: PathBuf,
        /// How many transactions to generate (the in-process broker holds about 150,000).
        #[arg(long, default_value_t = 100_000)]
        records: u64,
    },
}

#[derive(Subcommand)]
enum CheckpointCommand {
    /// Print a checkpoint's query id, batches, offsets per partition, watermark and state per operator;
    /// given a pipeline file, its checkpoint's, or for a consumer group member (`consumerGroup = true`)
    /// the group's members, committed offsets, lag and changelog.
    Inspect {
        /// The checkpoint folder (the pipeline's `checkpointLocation`), or a pipeline file.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UdfCommand {
    /// Print a module's ABI version, kind, exports, imports and declared schemas.
    Inspect {
        #[command(flatten)]
        module: ModuleArgs,
    },
    /// Run a module on sample data and print the rows it returns, or the error with the row at fault.
    Test {
        #[command(flatten)]
        module: ModuleArgs,
        /// One record per line: raw values for a deserializer, JSON objects for a transform.
        #[arg(long)]
        input: PathBuf,
    },
}

/// What `udf inspect` and `udf test` share: the module and how to load it.
#[derive(clap::Args)]
struct ModuleArgs {
    /// The `.wasm` module.
    module: PathBuf,
    /// The input schema of a transform (and of `udf test`'s JSON lines), as Spark DDL ("name STRING,
    /// count BIGINT").
    #[arg(long)]
    input_schema: Option<String>,
    /// The UDF's configuration, as JSON.
    #[arg(long, default_value = "{}")]
    config: String,
    /// A limit as in the pipeline file's `[limits]`, e.g. `--limit timeout=2s` (repeatable; defaults:
    /// memory=256MiB, timeout=10s, max_output=64MiB, max_log=64KiB, max_rows=10000).
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    limits: Vec<String>,
}

impl ModuleArgs {
    /// The parsed input schema and limits.
    fn parsed(&self) -> anyhow::Result<(Option<arrow_schema::SchemaRef>, weir::UdfLimits)> {
        let schema = udf_tool::parse_input_schema(self.input_schema.as_deref())?;
        let limits = weir::config::parse_limit_flags(&self.limits)?;
        Ok((schema, limits))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProgressMode {
    /// A status line when stderr is a terminal, JSON lines otherwise (none with a console sink, whose
    /// tables are on stdout).
    Auto,
    /// One JSON object per batch on stdout (Spark's StreamingQueryProgress shape).
    Json,
    /// A status line on stderr.
    Human,
    /// Both.
    Both,
}

/// glibc gives each thread that allocates its own 64 MiB-aligned arena and keeps their freed memory: with
/// the source, the workers, the writer and librdkafka's threads, six arenas held ~110 MiB of the
/// reference workload's ~150 MiB peak. Two arenas cut the peak to ~120 MiB at the same CPU time
/// (measured; `docs/benchmarks.md`). Set before any thread starts; `MALLOC_ARENA_MAX` still overrides it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes the allocator's tuning; no other thread exists yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting tokio");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", redacted::redact(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log lines on stderr, filtered by `WEIR_LOG` (default: warnings, and what UDFs print).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,weir::udf=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| redacted::Stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        // Colour codes only for a person at a terminal, not in a file, a pipe or a service's journal.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Validate { file } => {
            let spec = weir::config::load(&file)?;
            redacted::hide(&spec.secrets);
            let plan = weir::Pipeline::validate(spec)
                .with_context(|| format!("{}: planning the pipeline", file.display()))?;
            print!("{}", redacted::redact(&plan.describe()));
            println!("ok: {} is valid", file.display());
            Ok(())
        }
        Command::Run {
            files,
            progress,
            reload,
            metrics,
        } => run::run(&files, progress, reload, metrics).await,
        Command::Udf {
            command: UdfCommand::Inspect { module },
        } => {
            let (schema, limits) = module.parsed()?;
            let report = udf_tool::inspect(&module.module, schema, &module.config, limits)?;
            print!("{report}");
            Ok(())
        }
        Command::Udf {
            command: UdfCommand::Test { module, input },
        } => {
            let (schema, limits) = module.parsed()?;
            let report = udf_tool::test(&module.module, &input, schema, &module.config, limits)?;
            print!("{report}");
            Ok(())
        }
        Command::Files { dir } => {
            for file in weir::committed_files(&dir)? {
                println!("{}", file.display());
            }
            Ok(())
        }
        Command::Checkpoint {
            command: CheckpointCommand::Inspect { dir },
        } => {
            let report = if dir.is_file() {
                weir::inspect_pipeline(&weir::config::load(&dir)?)?
            } else {
                weir::inspect_checkpoint(&dir)?
            };
            print!("{report}");
            Ok(())
        }
        Command::Demo { file, records } => {
            let report = weir::internal::demo::run_fraud_demo(&file, records).await?;
            println!("{report}");
            Ok(())
        }
    }
}
