//! The service's Prometheus metrics (served by `routes::metrics`): requests and their latency by
//! route, ingestion outcomes, rescoring progress, the webhook outbox's depth and delivery
//! results, connections.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::{Ingested, Outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route pattern, or `unmatched`: never the raw path.
    pub route: String,
    /// One of [`METHODS`], or `other`: hyper accepts any token as a method, and a label taken from
    /// unauthenticated input would add a series per token for the life of the process.
    pub method: &'static str,
    pub status: u16,
}

/// The methods counted by name; any other is counted as `other`.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The method's label: its name if it is one of [`METHODS`], `other` if not.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    METHODS.iter().find(|m| **m == method.as_str()).copied().unwrap_or("other")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// Every metric the service exposes.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub messages: Family<OutcomeLabels, Counter>,
    pub lead_lookups: Family<OutcomeLabels, Counter>,
    pub webhook_attempts: Family<OutcomeLabels, Counter>,
    pub outbox_depth: Gauge,
    pub rescoring_done: Gauge,
    pub rescoring_planned: Gauge,
    /// Leads this instance went through in the ranges of activations' rescorings it took (with
    /// instances sharing a database, each counts its own share).
    pub rescored_here: Counter,
    /// Client connections open now.
    pub connections: Gauge,
    /// Connections refused on arrival because `--max-connections` were open.
    pub connections_refused: Counter,
    /// Leads erased.
    pub erasures: Counter,
    /// Events deleted past their workspace's retention.
    pub events_expired: Counter,
    /// Browser-key requests and messages limited, by why (`abuse.rs`).
    pub browser_limited: Family<OutcomeLabels, Counter>,
    /// Requests per ingestion transaction where requests are grouped (`intake::groups`).
    pub requests_per_ingestion: Histogram,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("leadscore");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register("http_request_duration_seconds", "Time to answer a request, by route", latency.clone());
        let messages = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "messages",
            "Ingested messages by outcome (accepted, duplicate, refused, suppressed: naming an erased person)",
            messages.clone(),
        );
        let lead_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "lead_lookups",
            "Ingested messages by where their lead was found: remembered by the writer, or read from the database",
            lead_lookups.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts by outcome (delivered, failed, gave_up)",
            webhook_attempts.clone(),
        );
        let outbox_depth = Gauge::default();
        registry.register("outbox_depth", "Webhook notifications waiting to be delivered", outbox_depth.clone());
        // Gauges never end in `_total`, which Prometheus reserves for counters.
        let rescoring_done = Gauge::default();
        registry.register(
            "rescoring_leads_done",
            "Leads rescored by the running or last rescoring",
            rescoring_done.clone(),
        );
        let rescoring_planned = Gauge::default();
        registry.register(
            "rescoring_leads_planned",
            "Leads to rescore in the running or last rescoring",
            rescoring_planned.clone(),
        );
        let rescored_here = Counter::default();
        registry.register(
            "rescoring_leads_rescored_here",
            "Leads this instance went through in the rescorings after activations it took part in",
            rescored_here.clone(),
        );
        let connections = Gauge::default();
        registry.register("http_connections", "Client connections open now", connections.clone());
        let connections_refused = Counter::default();
        registry.register(
            "http_connections_refused",
            "Connections refused on arrival because the service held as many as --max-connections allows",
            connections_refused.clone(),
        );
        let erasures = Counter::default();
        registry.register("lead_erasures", "Leads erased (each with the leads merged into it)", erasures.clone());
        let events_expired = Counter::default();
        registry.register(
            "events_expired",
            "Events deleted because they were older than their workspace's retention",
            events_expired.clone(),
        );
        let browser_limited = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "browser_limited",
            "Browser-key requests refused by a rate limit (key_rate, address_rate), messages refused by the cap on new \
             anonymous leads (anonymous_cap), and bots' requests ignored or marked (bot_ignored, bot_marked)",
            browser_limited.clone(),
        );
        let requests_per_ingestion = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        registry.register(
            "ingestion_group_requests",
            "Requests stored per ingestion transaction on PostgreSQL, where the requests that arrive while \
             --database-writers transactions run go together into the next one",
            requests_per_ingestion.clone(),
        );
        Metrics {
            requests_per_ingestion,
            browser_limited,
            registry,
            requests,
            latency,
            messages,
            lead_lookups,
            webhook_attempts,
            outbox_depth,
            rescoring_done,
            rescoring_planned,
            rescored_here,
            connections,
            connections_refused,
            erasures,
            events_expired,
        }
    }
}

impl Metrics {
    /// Counts the outcome of every ingested message, and logs each refused one (its position and
    /// reason, with quoted values left out: they can hold e-mail addresses and user ids).
    pub fn count_ingested(&self, ingested: &Ingested) {
        for (index, item) in ingested.items.iter().enumerate() {
            let outcome = match item {
                Outcome::Accepted { .. } => "accepted",
                Outcome::Duplicate => "duplicate",
                Outcome::Suppressed => "suppressed",
                Outcome::Refused { reason } => {
                    tracing::info!(item = index, reason = %without_quoted_values(reason), "refused a message");
                    "refused"
                }
            };
            self.messages.get_or_create(&OutcomeLabels { outcome }).inc();
        }
        for (outcome, count) in [("remembered", ingested.remembered), ("database", ingested.looked_up)] {
            if count > 0 {
                self.lead_lookups.get_or_create(&OutcomeLabels { outcome }).inc_by(count as u64);
            }
        }
    }

    pub fn count_erasure(&self) {
        self.erasures.inc();
    }

    pub fn browser_limited(&self, outcome: &'static str, count: u64) {
        if count > 0 {
            self.browser_limited.get_or_create(&OutcomeLabels { outcome }).inc_by(count);
        }
    }

    pub fn webhook_attempt(&self, outcome: &'static str) {
        self.webhook_attempts.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// The names of message fields, which refusal reasons quote in backticks and logs may keep.
const FIELD_NAMES: &[&str] = &[
    "type",
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "receivedAt",
    "properties",
    "traits",
    "context",
    "groupId",
    "previousId",
    "name",
    "category",
    "writeKey",
    "batch",
    "integrations",
    "id",
    "lead",
    "at",
    "email",
    "events",
];

/// `reason` with every quoted part (`"..."`, `` `...` ``) replaced by `…`, but the names of
/// message fields: refusal reasons quote what the client sent (serde's `invalid type: string
/// "..."`, `` a time: `...` ``), which can be personal data that logs must not hold, while the
/// field names say what was wrong.
pub fn without_quoted_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut quoted: Option<(char, String)> = None;
    for c in reason.chars() {
        match &mut quoted {
            Some((quote, text)) if c == *quote => {
                if *quote == '`' && FIELD_NAMES.contains(&text.as_str()) {
                    out.push_str(text);
                } else {
                    out.push('…');
                }
                out.push(c);
                quoted = None;
            }
            Some((_, text)) => text.push(c),
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quoted = Some((c, String::new()));
                }
            }
        }
    }
    if quoted.is_some() {
        out.push('…');
    }
    out
}

impl Metrics {
    /// Counts and times one answered request, by its route pattern (never the raw path, which
    /// would hold lead ids).
    pub fn observe_request(&self, route: String, method: &'static str, status: u16, seconds: f64) {
        self.requests.get_or_create(&RequestLabels { route: route.clone(), method, status }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(seconds);
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.registry)?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_reasons_leave_out_what_the_client_sent() {
        assert_eq!(
            without_quoted_values(r#"batch[3]: invalid type: string "ann@example.com", expected a map"#),
            r#"batch[3]: invalid type: string "…", expected a map"#
        );
        assert_eq!(without_quoted_values("`event` is missing"), "`event` is missing");
        assert_eq!(
            without_quoted_values("`timestamp` is not a time: `ann@example.com`"),
            "`timestamp` is not a time: `…`"
        );
        assert_eq!(without_quoted_values("cut \"ann@exa"), "cut \"…");
    }
}
