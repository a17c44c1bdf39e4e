//! `railscope` command line: infer, calibrate, evaluate, bench, serve, accounts, simulate. JSON on stdout, progress and
//! logs on stderr; every failure is an `error: …` line and a non-zero exit, never a panic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use railscope::config::Config;
use railscope::offline::bench::{self, BenchOptions};
use railscope::offline::calibrate::{self, Method};
use railscope::offline::evaluate::{self, progress_bar};
use railscope::offline::simulate::{self, FrameSource, SimCamera, SimOptions};
use railscope::offline::slot_eval;
use railscope::pipeline::package::calibration_file_name;
use railscope::pipeline::preprocess::RoiMode;
use railscope::pipeline::scoring::PAPER_THRESHOLD;
use railscope::pipeline::track::TrackLocator;
use railscope::{Error, ImageInput, Inspector, LoadOptions, Result};
use std::time::Duration;

const DEFAULT_MODEL: &str = "models/nested-edgan";

#[derive(Parser, Debug)]
#[command(
    name = "railscope",
    version,
    about = "Visual inspection of railway track fasteners"
)]
struct Cli {
    /// Configuration file (default: config/railscope.toml when present; env RAILSCOPE__SECTION__KEY overrides).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Roi {
    Whole,
    Search,
    Rects,
    /// Slots from the track's geometry (preprocess.geometry, or --geometry).
    Track,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum MethodArg {
    /// Normal images only: bounds from the normals, threshold at --target false alarms.
    Normals,
    Fixed,
    BestF1,
    FalseAlarmRate,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score images; one JSON line per image on stdout.
    Infer {
        /// Image files, or folders (their images, sorted by name).
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Model package (default: --camera's own `model` in the config's [[cameras]], else
        /// server.model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Calibration file (default: calibration/<model>[.<camera>].json).
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Write a blended heatmap PNG per image into this folder.
        #[arg(long)]
        heatmap: Option<PathBuf>,
        /// Region of interest (default: preprocess.roi from the config, `whole`).
        #[arg(long, value_enum)]
        roi: Option<Roi>,
        /// For --roi track: a TOML file with the camera's [geometry] table (e.g. a generated
        /// set's camera.toml; default: preprocess.geometry from the config).
        #[arg(long)]
        geometry: Option<PathBuf>,
        #[arg(long)]
        camera: Option<String>,
        /// Frames per session run.
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Compute min/max and the threshold on an MVTec-layout set; writes calibration JSON.
    Calibrate {
        /// Model package (default: --camera's own `model` in the config's [[cameras]], else
        /// server.model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// MVTec-layout folder: test/ holds good (and defect) images; for --method normals a
        /// folder with only train/good will do.
        #[arg(long)]
        data: PathBuf,
        /// `normals` needs normal images only; the others need defects in the set.
        #[arg(long, value_enum, default_value = "normals")]
        method: MethodArg,
        /// Target false-alarm rate for --method normals and false-alarm-rate.
        #[arg(long, default_value_t = 0.01)]
        target: f64,
        /// Threshold for --method fixed.
        #[arg(long, default_value_t = PAPER_THRESHOLD)]
        threshold: f64,
        #[arg(long)]
        camera: Option<String>,
        /// Output file (default: calibration/<model>[.<camera>].json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// AUROC, AUPRC, F1/P/R, per-defect recall, confusion matrix on an MVTec-layout test split.
    Evaluate {
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// Folder for evaluation.json, report.md, roc.png, pr.png.
        #[arg(long, default_value = "target/evaluation")]
        out: PathBuf,
    },
    /// Fastener-slot localisation (roi = track) against generated frames' ground truth: recall,
    /// IoU, false slots, no-track frames, time per frame. One JSON object on stdout.
    Slots {
        /// A generated set (railscope_train.track) or its frames/ folder.
        #[arg(long)]
        frames: PathBuf,
        /// The camera's [geometry] TOML (default: <frames>/camera.toml).
        #[arg(long)]
        geometry: Option<PathBuf>,
        /// Write each frame with its true (green) and located (red) slots into this folder.
        #[arg(long)]
        draw: Option<PathBuf>,
    },
    /// Cut every whole fastener slot of a camera's frames into an MVTec-layout `train/good`
    /// folder to train on, with numbered contact sheets to skim and prune.
    Harvest {
        /// Folder of the camera's frames.
        #[arg(long)]
        frames: PathBuf,
        /// The camera in the config's [[cameras]] whose geometry to use (else preprocess.geometry).
        #[arg(long)]
        camera: Option<String>,
        /// A TOML file with a [geometry] table instead (e.g. a generated set's camera.toml).
        #[arg(long, conflicts_with = "camera")]
        geometry: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Side of the written crops in pixels.
        #[arg(long, default_value_t = 128)]
        size: i32,
        /// Generated frames only: label each slot from the ground truth beside its frame and
        /// write an MVTec test set (`test/<label>/`) for `railscope evaluate`.
        #[arg(long)]
        truth: bool,
    },
    /// Session throughput per batch size, preprocessing and end-to-end cost, memory.
    Bench {
        #[arg(long, default_value = DEFAULT_MODEL)]
        model: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
        batch_sizes: Vec<usize>,
        /// Measuring time per batch size.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Fastener crops for the preprocessing / end-to-end figures.
        #[arg(long, default_value = "tests/fixtures/fasteners/test/good")]
        crops: PathBuf,
        /// A multi-fastener frame for the search figure.
        #[arg(long, default_value = "tests/fixtures/fasteners/frames/frame_000.png")]
        frame: PathBuf,
        /// Generated track sets (camera.toml + frames/, `make data-track`) for the whole-frame
        /// figures (repeatable).
        #[arg(long)]
        track: Vec<PathBuf>,
        /// Write the markdown table here (e.g. docs/performance.md).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Run the HTTP inspection service (config: [server], [batching], [storage], [auth], [[cameras]]).
    Serve {
        /// The service's model package, for every camera without its own `model` (default:
        /// server.model from the config).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Listen address (default: server.bind).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Named dashboard accounts (inspectors and admins) in the service's database
    /// (storage.path). Passwords are read from stdin, never from the command line.
    Accounts {
        #[command(subcommand)]
        action: AccountsCommand,
    },
    /// Post frames to a running service as line cameras would; prints throughput, verdicts, latency.
    Simulate {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Use the first K cameras of the config's [[cameras]] (ids and keys).
        #[arg(long, default_value_t = 1)]
        cameras: usize,
        /// Explicit camera as ID=KEY (repeatable); overrides --cameras.
        #[arg(long = "camera", value_name = "ID=KEY")]
        camera: Vec<String>,
        /// Frames per second per camera; 0 = as fast as possible.
        #[arg(long, default_value_t = 2.0)]
        fps: f64,
        /// Requests in flight per camera.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long)]
        duration: Option<f64>,
        /// Frames to send in all (the run stops at whichever of --duration/--frames comes first).
        #[arg(long)]
        frames: Option<u64>,
        /// Folder of images (MVTec layout: good/defect from the folder names).
        #[arg(long, conflicts_with = "synthetic")]
        dir: Option<PathBuf>,
        /// The committed synthetic fastener set (tests/fixtures/fasteners).
        #[arg(long)]
        synthetic: bool,
        /// Share of frames drawn from the defect images.
        #[arg(long, default_value_t = 0.1)]
        defect_rate: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "L1")]
        track_id: String,
        #[arg(long, default_value_t = 80.0)]
        speed_kmh: f64,
        /// Per-request timeout in seconds.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        /// Print the report as one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum AccountRole {
    /// Reads everything and reviews defects.
    Inspector,
    /// Also reloads the models and applies calibrations.
    Admin,
}

#[derive(Subcommand, Debug)]
enum AccountsCommand {
    /// Create an account; its password is read from stdin (asked twice, unechoed, on a terminal).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: AccountRole,
        /// Read the password as one line of stdin without prompting (for scripts), e.g.
        /// `printf '%s\n' "$PW" | railscope accounts add alice --role inspector --password-stdin`.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Every account: one JSON line each (name, role, created, disabled).
    List,
    /// Disable an account: it can no longer log in and its sessions end at once.
    Disable { name: String },
    /// Set a new password (read from stdin as for `add`); the account's sessions end.
    Password {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Infer {
            images,
            model,
            calibration,
            heatmap,
            roi,
            geometry,
            camera,
            batch,
        } => {
            let roi = match roi {
                None => None,
                Some(Roi::Whole) => Some(RoiMode::Whole),
                Some(Roi::Search) => Some(RoiMode::Search),
                Some(Roi::Track) => Some(RoiMode::Track(TrackLocator::from_config(
                    &match &geometry {
                        Some(p) => slot_eval::load_geometry(p)?,
                        None => config.preprocess.geometry.clone(),
                    },
                )?)),
                Some(Roi::Rects) => Some(RoiMode::from_config(
                    &railscope::config::PreprocessConfig {
                        roi: "rects".into(),
                        ..config.preprocess.clone()
                    },
                )?),
            };
            let opts = LoadOptions {
                calibration,
                roi,
                ..Default::default()
            };
            let mut files = Vec::new();
            for p in images {
                if p.is_dir() {
                    files.extend(railscope::offline::dataset::images_in(&p)?);
                } else {
                    files.push(p);
                }
            }
            let model = model.unwrap_or_else(|| camera_model(&config, camera.as_deref()));
            let inspector = Inspector::load(&model, &config, &opts)?;
            infer(&inspector, &files, heatmap.as_deref(), camera, batch.max(1))
        }
        Command::Calibrate {
            model,
            data,
            method,
            target,
            threshold,
            camera,
            out,
        } => {
            let opts = LoadOptions {
                without_calibration: true,
                roi: Some(RoiMode::Whole),
                ..Default::default()
            };
            let model = model.unwrap_or_else(|| camera_model(&config, camera.as_deref()));
            let inspector = Inspector::load(&model, &config, &opts)?;
            let method = match method {
                MethodArg::Normals => Method::Normals(target),
                MethodArg::Fixed => Method::Fixed(threshold),
                MethodArg::BestF1 => Method::BestF1,
                MethodArg::FalseAlarmRate => Method::FalseAlarmRate(target),
            };
            let cal = calibrate::calibrate(&inspector, &data, method, camera.as_deref(), true)?;
            let out = out.unwrap_or_else(|| {
                inspector.calibration_dir().join(calibration_file_name(
                    inspector.package().name(),
                    camera.as_deref(),
                ))
            });
            calibrate::write(&cal, &out)?;
            let v = json!({
                "min": cal.min, "max": cal.max, "threshold": cal.threshold, "method": cal.method,
                "n": cal.n, "metrics": cal.metrics, "provider": inspector.provider(), "written": out,
            });
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Harvest {
            frames,
            camera,
            geometry,
            out,
            size,
            truth,
        } => {
            let geometry = match (&geometry, &camera) {
                (Some(p), _) => slot_eval::load_geometry(p)?,
                (None, Some(id)) => {
                    let cam = config.cameras.iter().find(|c| &c.id == id).ok_or_else(|| {
                        Error::Config(format!("camera {id:?} is not in the config's [[cameras]]"))
                    })?;
                    cam.geometry
                        .clone()
                        .unwrap_or_else(|| config.preprocess.geometry.clone())
                }
                (None, None) => config.preprocess.geometry.clone(),
            };
            let rep = railscope::offline::harvest::harvest(
                &frames,
                &TrackLocator::from_config(&geometry)?,
                &out,
                size,
                truth,
            )?;
            println!(
                "{}",
                json!({
                    "frames": rep.frames, "crops": rep.crops.len(), "partial_slots": rep.partial_slots,
                    "no_track": rep.no_track, "contact_sheets": rep.contact_sheets, "out": out,
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Slots {
            frames,
            geometry,
            draw,
        } => {
            let geometry =
                slot_eval::load_geometry(&geometry.unwrap_or_else(|| frames.join("camera.toml")))?;
            let report = slot_eval::evaluate(&frames, &geometry, draw.as_deref())?;
            println!("{}", json!(report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate {
            model,
            data,
            calibration,
            out,
        } => {
            let opts = LoadOptions {
                calibration,
                roi: Some(RoiMode::Whole),
                ..Default::default()
            };
            let inspector = Inspector::load(&model, &config, &opts)?;
            let report = evaluate::evaluate(&inspector, &data, true)?;
            let files = evaluate::write_outputs(&report, &out)?;
            let mut v = evaluate::summary(&report);
            v["written"] = json!(files);
            println!("{v}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            model,
            batch_sizes,
            seconds,
            crops,
            frame,
            track,
            write,
        } => {
            let opts = LoadOptions {
                without_calibration: true,
                roi: Some(RoiMode::Whole),
                ..Default::default()
            };
            let inspector = Inspector::load(&model, &config, &opts)?;
            let bopts = BenchOptions {
                batch_sizes,
                seconds,
                crops_dir: crops.is_dir().then_some(crops),
                frame: frame.is_file().then_some(frame),
                track_sets: track,
                progress: true,
            };
            let report = bench::run(&inspector, &config, &bopts)?;
            if let Some(p) = &write {
                bench::write_markdown(&report, p)?;
            }
            println!(
                "{}",
                serde_json::to_string(&report).map_err(|e| Error::Other(e.to_string()))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { model, bind } => {
            // Kept by the service so a reload (which re-reads the config) honours them too.
            let overrides = railscope::service::Overrides { model, bind };
            railscope::service::serve(config, cli.config, overrides)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Accounts { action } => {
            accounts(&config, action)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            url,
            cameras,
            camera,
            fps,
            concurrency,
            duration,
            frames,
            dir,
            synthetic,
            defect_rate,
            seed,
            track_id,
            speed_kmh,
            timeout,
            json,
        } => {
            let cams: Vec<SimCamera> = if camera.is_empty() {
                if cameras > config.cameras.len() {
                    return Err(Error::Config(format!(
                        "--cameras {cameras}, but the config lists {} camera(s); add [[cameras]] or pass --camera ID=KEY",
                        config.cameras.len()
                    )));
                }
                config.cameras[..cameras]
                    .iter()
                    .map(|c| SimCamera {
                        id: c.id.clone(),
                        key: c.api_key.clone(),
                    })
                    .collect()
            } else {
                camera
                    .iter()
                    .map(|c| {
                        c.split_once('=')
                            .map(|(id, key)| SimCamera {
                                id: id.into(),
                                key: key.into(),
                            })
                            .ok_or_else(|| Error::Config(format!("--camera {c:?}: use ID=KEY")))
                    })
                    .collect::<Result<_>>()?
            };
            if !(fps >= 0.0 && fps.is_finite() && (0.0..=1.0).contains(&defect_rate)) {
                return Err(Error::Config(
                    "--fps must be ≥ 0 and --defect-rate in [0, 1]".into(),
                ));
            }
            let source = match (&dir, synthetic) {
                (Some(d), _) => FrameSource::from_dir(d)?,
                (None, true) => FrameSource::synthetic()?,
                (None, false) => return Err(Error::Config("give --dir DIR or --synthetic".into())),
            };
            let opts = SimOptions {
                url,
                cameras: cams,
                fps,
                concurrency: concurrency.max(1),
                duration: duration.map(Duration::from_secs_f64),
                frames,
                defect_rate,
                seed,
                track_id,
                speed_kmh,
                timeout: Duration::from_secs_f64(timeout.max(0.1)),
            };
            let report = simulate::run(&opts, &source)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| Error::Other(e.to_string()))?
                );
            } else {
                println!("{}", report.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `railscope accounts …` on the database the service uses (`storage.path`).
fn accounts(config: &Config, action: AccountsCommand) -> Result<()> {
    use railscope::service::accounts::{check_name, check_password, hash_password};
    use railscope::service::store::{Account, SqliteStore, Store};
    let store = SqliteStore::open(&config.storage.path, &config.storage.synchronous)?;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    let missing = |name: &str| {
        Error::Other(format!(
            "no account {name:?} in {} (railscope accounts list)",
            store.db_path().display()
        ))
    };
    match action {
        AccountsCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            check_name(&name).map_err(Error::Other)?;
            if store.account(&name)?.is_some() {
                return Err(Error::Other(format!("account {name:?} already exists")));
            }
            let password = read_password(!password_stdin)?;
            check_password(&password).map_err(Error::Other)?;
            let role = match role {
                AccountRole::Inspector => "inspector",
                AccountRole::Admin => "admin",
            };
            let now = chrono::Utc::now().timestamp_millis();
            let account = Account {
                name: name.clone(),
                role: role.to_string(),
                password_hash: hash_password(&password)?,
                created_ms: now,
                disabled_ms: None,
            };
            if !store.create_account(&account)? {
                return Err(Error::Other(format!("account {name:?} already exists")));
            }
            println!(
                "{}",
                json!({"account": name, "role": role, "created": time(now)})
            );
        }
        AccountsCommand::List => {
            for a in store.accounts()? {
                println!(
                    "{}",
                    json!({
                        "name": a.name,
                        "role": a.role,
                        "created": time(a.created_ms),
                        "disabled": a.disabled_ms.and_then(time),
                    })
                );
            }
        }
        AccountsCommand::Disable { name } => {
            let now = chrono::Utc::now().timestamp_millis();
            if !store.disable_account(&name, now)? {
                return Err(missing(&name));
            }
            let at = store
                .account(&name)?
                .and_then(|a| a.disabled_ms)
                .unwrap_or(now);
            println!(
                "{}",
                json!({"account": name, "disabled": time(at), "sessions_ended": true})
            );
        }
        AccountsCommand::Password {
            name,
            password_stdin,
        } => {
            if store.account(&name)?.is_none() {
                return Err(missing(&name));
            }
            let password = read_password(!password_stdin)?;
            check_password(&password).map_err(Error::Other)?;
            if !store.set_password(&name, &hash_password(&password)?)? {
                return Err(missing(&name));
            }
            println!(
                "{}",
                json!({"account": name, "password_changed": true, "sessions_ended": true})
            );
        }
    }
    Ok(())
}

/// A password from stdin: one line (its line ending dropped). With `prompt` and a terminal,
/// asked on stderr with echo off, twice.
fn read_password(prompt: bool) -> Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    let tty = prompt && stdin.is_terminal();
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let read = |label: &str| -> Result<String> {
        if tty {
            eprint!("{label}: ");
            stty("-echo");
        }
        let mut line = String::new();
        let got = stdin.lock().read_line(&mut line);
        if tty {
            stty("echo");
            eprintln!();
        }
        got.map_err(|e| Error::io("reading the password from stdin", e))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        Ok(line.strip_suffix('\r').unwrap_or(line).to_string())
    };
    let password = read("password")?;
    if password.is_empty() {
        return Err(Error::Other(
            "no password on stdin (send it as one line, e.g. with --password-stdin)".into(),
        ));
    }
    if tty && read("password again")? != password {
        return Err(Error::Other("the two passwords differ".into()));
    }
    Ok(password)
}

/// The model package the service judges `camera` with: its own `model` in the config's
/// [[cameras]], else `server.model` (also for no camera, or one the config does not list).
fn camera_model(config: &Config, camera: Option<&str>) -> PathBuf {
    camera
        .and_then(|id| config.cameras.iter().find(|c| c.id == id))
        .and_then(|c| c.own_model())
        .unwrap_or(&config.server.model)
        .to_path_buf()
}

fn infer(
    inspector: &Inspector,
    images: &[PathBuf],
    heatmap: Option<&Path>,
    camera: Option<String>,
    batch: usize,
) -> Result<ExitCode> {
    let pb = progress_bar(images.len(), "infer", images.len() > 1);
    let m = &inspector.package().manifest.model;
    let model = json!({"name": m.name, "version": m.version});
    let mut failed = 0usize;
    let mut used_names = std::collections::HashSet::new();
    for chunk in images.chunks(batch) {
        let bytes: Vec<std::result::Result<Vec<u8>, String>> = chunk
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display())))
            .collect();
        let readable: Vec<(usize, &Vec<u8>)> = bytes
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().ok().map(|b| (i, b)))
            .collect();
        let inputs: Vec<ImageInput<'_>> = readable
            .iter()
            .map(|(i, b)| ImageInput {
                id: chunk[*i].display().to_string(),
                bytes: b,
                camera: camera.clone(),
            })
            .collect();
        let mut results = inspector
            .inspect_batch(&inputs, heatmap.is_some())
            .into_iter();
        for (i, path) in chunk.iter().enumerate() {
            let line = match &bytes[i] {
                Err(e) => Err(e.clone()),
                Ok(_) => results
                    .next()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .unwrap_or_else(|| Err("no result".into())),
            };
            let v = match line {
                Ok(r) => {
                    let mut v =
                        serde_json::to_value(&r).map_err(|e| Error::Other(e.to_string()))?;
                    v["model"] = model.clone();
                    if let (Some(dir), Some(png)) = (heatmap, &r.heatmap_png) {
                        let out = dir.join(heatmap_name(path, &mut used_names));
                        std::fs::create_dir_all(dir)
                            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
                        std::fs::write(&out, png)
                            .map_err(|e| Error::io(format!("write {}", out.display()), e))?;
                        v["heatmap"] = json!(out);
                    }
                    v
                }
                Err(e) => {
                    failed += 1;
                    json!({ "image": path.display().to_string(), "error": e })
                }
            };
            pb.suspend(|| println!("{v}"));
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `<stem>.heatmap.png`, prefixed with the parent folder (then numbered) when two inputs share a
/// stem, e.g. `good/000000.png` and `missing_clip/000000.png`.
fn heatmap_name(path: &Path, used: &mut std::collections::HashSet<String>) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("");
    let mut candidates = vec![stem.to_string()];
    if !parent.is_empty() {
        candidates.push(format!("{parent}-{stem}"));
    }
    let mut name = candidates.iter().find(|c| !used.contains(*c)).cloned();
    let mut k = 2;
    while name.is_none() {
        let c = format!("{stem}-{k}");
        if !used.contains(&c) {
            name = Some(c);
        }
        k += 1;
    }
    let name = name.unwrap_or_default();
    used.insert(name.clone());
    format!("{name}.heatmap.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heatmap_names_do_not_collide() {
        let mut used = std::collections::HashSet::new();
        assert_eq!(
            heatmap_name(Path::new("a/good/000000.png"), &mut used),
            "000000.heatmap.png"
        );
        assert_eq!(
            heatmap_name(Path::new("a/crack/000000.png"), &mut used),
            "crack-000000.heatmap.png"
        );
        assert_eq!(
            heatmap_name(Path::new("b/crack/000000.png"), &mut used),
            "000000-2.heatmap.png"
        );
    }

    #[test]
    fn cli_parses_the_documented_commands() {
        let c = Cli::try_parse_from([
            "railscope",
            "bench",
            "--batch-sizes",
            "1,8,64",
            "--seconds",
            "2",
        ])
        .unwrap();
        match c.command {
            Command::Bench {
                batch_sizes,
                seconds,
                ..
            } => {
                assert_eq!(batch_sizes, vec![1, 8, 64]);
                assert_eq!(seconds, 2.0);
            }
            other => panic!("{other:?}"),
        }
        let c = Cli::try_parse_from([
            "railscope",
            "calibrate",
            "--data",
            "d",
            "--method",
            "false-alarm-rate",
            "--target",
            "0.001",
        ])
        .unwrap();
        assert!(
            matches!(c.command, Command::Calibrate { method: MethodArg::FalseAlarmRate, target, .. } if target == 0.001)
        );
        let c = Cli::try_parse_from(["railscope", "calibrate", "--data", "d"]).unwrap();
        assert!(
            matches!(c.command, Command::Calibrate { method: MethodArg::Normals, target, .. } if target == 0.01),
            "normals is the default method"
        );
        let c = Cli::try_parse_from([
            "railscope",
            "infer",
            "x.png",
            "--roi",
            "search",
            "--heatmap",
            "h",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Command::Infer {
                roi: Some(Roi::Search),
                ..
            }
        ));
        assert!(
            Cli::try_parse_from(["railscope", "infer"]).is_err(),
            "images are required"
        );
        assert!(Cli::try_parse_from([
            "railscope",
            "calibrate",
            "--data",
            "d",
            "--method",
            "magic"
        ])
        .is_err());
        let c = Cli::try_parse_from([
            "railscope",
            "accounts",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .unwrap();
        assert!(matches!(
            c.command,
            Command::Accounts {
                action: AccountsCommand::Add {
                    role: AccountRole::Admin,
                    password_stdin: true,
                    ..
                }
            }
        ));
        assert!(
            Cli::try_parse_from(["railscope", "accounts", "add", "bob", "--password", "x"])
                .is_err(),
            "no password on the command line"
        );
    }
}
