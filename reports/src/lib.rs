//! `fraglab-reports` will own the versioned results schema (one JSON per run with a CSV
//! timeline beside it), atomic loading and saving of result files, and the renderers built on
//! saved results: summary tables, Markdown, a self-contained HTML page with SVG charts, and PNG
//! on request. Rendering never re-runs anything. It depends on nothing else in the workspace
//! and has no content yet: the reports issue builds it.
