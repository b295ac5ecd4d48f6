//! Where a workload comes from: a preset name, `file:PATH` (a TOML spec) or `trace:PATH`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::gen::Generator;
use crate::presets::{self, PresetParams};
use crate::spec::{WorkloadSpec, WorkloadSpecError, SPEC_FILE_MAX};
use crate::trace::{TraceError, TraceOptions, TraceReader};
use crate::Op;

/// Anything that stops a workload from producing ops.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A spec or preset is wrong.
    #[error(transparent)]
    Spec(#[from] WorkloadSpecError),
    /// A trace is unreadable or malformed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A workload, ready to stream.
#[derive(Clone, Debug)]
pub enum Workload {
    /// A generated workload; `base` is the directory relative paths in the spec start from.
    Spec {
        /// The resolved spec.
        spec: Box<WorkloadSpec>,
        /// Directory for relative paths (empirical size tables).
        base: PathBuf,
    },
    /// A trace file.
    Trace {
        /// The file.
        path: PathBuf,
        /// How to read it.
        options: TraceOptions,
    },
}

impl WorkloadSpec {
    /// Reads and checks a spec file.
    pub fn from_file(path: &Path) -> Result<WorkloadSpec, WorkloadSpecError> {
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(SPEC_FILE_MAX + 1).read_to_end(&mut bytes))
            .map_err(|e| WorkloadSpecError::Io {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let parse = |message: String| WorkloadSpecError::Parse {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() as u64 > SPEC_FILE_MAX {
            return Err(parse(format!(
                "larger than {SPEC_FILE_MAX} bytes (1 MiB), the largest spec read"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            parse(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let spec = WorkloadSpec::from_toml(&text).map_err(|message| WorkloadSpecError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        // Compiling checks every distribution's parameters and reads empirical tables.
        let base = path.parent().unwrap_or(Path::new("."));
        Generator::new(&spec, base, 0)
            .map(drop)
            .map_err(|e| match e {
                WorkloadSpecError::Invalid(message) => WorkloadSpecError::Parse {
                    path: path.to_path_buf(),
                    message,
                },
                other => other,
            })?;
        Ok(spec)
    }
}

impl Workload {
    /// Parses `NAME`, `file:PATH` or `trace:PATH`; `trace:-` reads the trace from stdin,
    /// which needs `trace.format` (stdin has no name to tell the format by). `params` sizes presets and spec files
    /// (`scale`, `records`, `ops`, `live_cap`); traces replay as they are.
    pub fn parse(
        what: &str,
        params: &PresetParams,
        trace: &TraceOptions,
    ) -> Result<Workload, WorkloadError> {
        if let Some(path) = what.strip_prefix("file:") {
            let path = Path::new(path);
            let mut spec = WorkloadSpec::from_file(path)?;
            apply_params(&mut spec, params).map_err(|e| WorkloadSpecError::Parse {
                path: path.to_path_buf(),
                message: format!("with the overrides given: {e}"),
            })?;
            let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok(Workload::Spec {
                spec: Box::new(spec),
                base,
            });
        }
        if let Some(path) = what.strip_prefix("trace:") {
            if path == "-" && trace.format.is_none() {
                return Err(crate::trace::stdin_needs_format().into());
            }
            if params != &PresetParams::default() {
                return Err(WorkloadSpecError::Invalid(
                    "a trace replays as recorded: --scale, --records, --ops and --live-cap do not apply"
                        .into(),
                )
                .into());
            }
            return Ok(Workload::Trace {
                path: PathBuf::from(path),
                options: trace.clone(),
            });
        }
        Workload::preset(what, params)
    }

    /// A preset by name.
    pub fn preset(name: &str, params: &PresetParams) -> Result<Workload, WorkloadError> {
        Ok(Workload::Spec {
            spec: Box::new(presets::preset(name, params)?),
            base: PathBuf::new(),
        })
    }

    /// The workload's name: the spec's, or the trace's path.
    pub fn name(&self) -> String {
        match self {
            Workload::Spec { spec, .. } => spec.name.clone(),
            Workload::Trace { path, .. } => format!("trace:{}", path.display()),
        }
    }

    /// The resolved parameters as JSON, for results.
    pub fn parameters(&self) -> serde_json::Value {
        match self {
            Workload::Spec { spec, .. } => serde_json::to_value(spec).unwrap_or_default(),
            Workload::Trace { path, options } => serde_json::json!({
                "trace": path.display().to_string(),
                "format": options.format.map(|f| f.to_string()),
                "lenient": options.lenient,
                "key_len": options.key_len,
            }),
        }
    }

    /// Starts a stream of ops. Generated workloads depend on `seed`; traces ignore it. A trace
    /// on stdin (`trace:-`) can be streamed once.
    pub fn stream(&self, seed: u64) -> Result<OpStream, WorkloadError> {
        match self {
            Workload::Spec { spec, base } => Ok(OpStream::Generated(Box::new(Generator::new(
                spec, base, seed,
            )?))),
            Workload::Trace { path, options } => {
                Ok(OpStream::Trace(Box::new(TraceReader::open(path, options)?)))
            }
        }
    }
}

/// Applies scale and overrides to a spec read from a file: `records` sets the keyspace (and
/// a full preload), `ops` every phase measured in requests, `live_cap` every live cap.
fn apply_params(spec: &mut WorkloadSpec, params: &PresetParams) -> Result<(), WorkloadSpecError> {
    if !(params.scale > 0.0 && params.scale.is_finite()) {
        return Err(WorkloadSpecError::Invalid(format!(
            "scale {} must be a positive number",
            params.scale
        )));
    }
    spec.scale(params.scale);
    if let Some(r) = params.records {
        if r == 0 {
            return Err(WorkloadSpecError::Invalid(
                "records must be at least 1".into(),
            ));
        }
        spec.keyspace = r;
        if let Some(p) = &mut spec.preload {
            p.keys = Some(r);
        }
    }
    if let Some(n) = params.ops {
        let phases: Vec<_> = spec.phases.iter_mut().filter(|p| p.ops.is_some()).collect();
        if phases.is_empty() {
            return Err(WorkloadSpecError::Invalid(
                "no phase is measured in requests, so --ops has nothing to set".into(),
            ));
        }
        phases.into_iter().for_each(|p| p.ops = Some(n));
    }
    if let Some(c) = params.live_cap {
        let phases: Vec<_> = spec
            .phases
            .iter_mut()
            .filter(|p| p.live_cap.is_some())
            .collect();
        if phases.is_empty() {
            return Err(WorkloadSpecError::Invalid(
                "no phase has a live cap, so --live-cap has nothing to set".into(),
            ));
        }
        phases
            .into_iter()
            .for_each(|p| p.live_cap = Some(crate::spec::Bytes(c)));
    }
    spec.validate()
}

/// A stream of ops from a generator or a trace.
#[derive(Debug)]
pub enum OpStream {
    /// Generated.
    Generated(Box<Generator>),
    /// Read from a trace.
    Trace(Box<TraceReader>),
}

impl OpStream {
    /// Phase names; an op's `phase` indexes them. A trace has one phase, `trace`.
    pub fn phase_names(&self) -> Vec<String> {
        match self {
            OpStream::Generated(g) => g.phase_names().to_vec(),
            OpStream::Trace(_) => vec!["trace".to_string()],
        }
    }

    /// The exact number of ops the stream yields from its start, when it is known before
    /// streaming ([`Generator::declared_ops`]); `None` for traces and for generated workloads
    /// whose length depends on their draws (phases measured in bytes written, deletes of a
    /// fraction of the live keys, live caps).
    pub fn declared_ops(&self) -> Option<u64> {
        match self {
            OpStream::Generated(g) => g.declared_ops(),
            OpStream::Trace(_) => None,
        }
    }

    /// For traces, how much of the input has been read: bytes read from the file or pipe so
    /// far (compressed bytes for zstd) and the input's total size when it is a regular file
    /// ([`TraceReader::input_progress`]). `None` for generators.
    pub fn input_progress(&self) -> Option<(u64, Option<u64>)> {
        match self {
            OpStream::Generated(_) => None,
            OpStream::Trace(t) => Some(t.input_progress()),
        }
    }

    /// Records a lenient trace reader skipped (0 for generators).
    pub fn skipped(&self) -> u64 {
        match self {
            OpStream::Generated(_) => 0,
            OpStream::Trace(t) => t.skipped(),
        }
    }

    /// Why the first few skipped records were bad ([`TraceReader::skipped_reasons`]; empty for
    /// generators).
    pub fn skipped_reasons(&self) -> &[String] {
        match self {
            OpStream::Generated(_) => &[],
            OpStream::Trace(t) => t.skipped_reasons(),
        }
    }
}

impl Iterator for OpStream {
    type Item = Result<Op, WorkloadError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            OpStream::Generated(g) => g.next().map(Ok),
            OpStream::Trace(t) => t.next().map(|r| r.map_err(WorkloadError::from)),
        }
    }
}
