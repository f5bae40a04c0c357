//! The dashboard from the outside: every route's answers, the security rules, hostile strings,
//! the metrics format, and random requests. (One integration root; `support` builds the heaps
//! and sources the others use.)

mod fuzz;
mod metrics;
mod pages;
mod routes;
mod security;
mod support;
