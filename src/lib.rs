//! crypto-report: AI-written crypto market reports next to a live market dashboard, served
//! from one binary over one embedded redb store.

pub mod allocator;
pub mod announce;
pub(crate) mod api;
pub mod app;
pub(crate) mod assets;
pub mod build_info;
pub mod cache;
pub(crate) mod card;
pub mod cluster;
pub mod commands;
pub mod config;
pub(crate) mod connections;
pub mod demo;
pub mod doctor;
pub(crate) mod edge;
pub(crate) mod encoded;
pub(crate) mod error;
pub(crate) mod headers;
pub(crate) mod i18n;
pub mod import;
pub mod live;
mod lock;
pub mod market;
pub mod metrics;
pub(crate) mod pages;
pub mod redis_conn;
pub(crate) mod render;
pub mod reports;
pub(crate) mod request;
pub mod routes;
pub mod search;
pub mod secret;
pub(crate) mod server;
pub mod since;
pub(crate) mod state;
pub mod store;
pub mod sync;
pub mod systemd;
pub mod tasks;
pub mod workers;

pub use crate::app::{Feed, Parts, launch};
pub use crate::routes::app;
pub use crate::server::{SHUTDOWN_GRACE, serve, shutdown_signal};
pub use crate::state::{AppState, Settings, Shared};
