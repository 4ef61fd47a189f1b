//! Prometheus metrics: decisions by outcome, pending requests, and how long
//! people take to decide.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

/// A notification channel (`slack`, `teams`, `webhook-0`, …).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    pub channel: String,
}

/// A delivery attempt's result on a channel.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    pub channel: String,
    pub result: String,
}

/// The gateway's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub decisions: Family<OutcomeLabel, Counter>,
    pub transitions: Family<OutcomeLabel, Counter>,
    pub pending: Gauge,
    pub time_to_decision: Histogram,
    pub refusals: Family<OutcomeLabel, Counter>,
    pub channel_up: Family<ChannelLabel, Gauge>,
    pub channel_deliveries: Family<DeliveryLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("countersign");
        let decisions = Family::<OutcomeLabel, Counter>::default();
        registry.register("decisions", "Policy decisions on submitted actions, by outcome", decisions.clone());
        let transitions = Family::<OutcomeLabel, Counter>::default();
        registry.register("transitions", "Requests reaching a status after submission, by status", transitions.clone());
        let pending = Gauge::default();
        registry.register("pending_requests", "Requests waiting for approval (sampled at scrape)", pending.clone());
        let buckets = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0];
        let time_to_decision = Histogram::new(buckets);
        registry.register(
            "time_to_decision_seconds",
            "Seconds from submission to a human decision (approved or denied)",
            time_to_decision.clone(),
        );
        let refusals = Family::<OutcomeLabel, Counter>::default();
        registry.register("refusals", "Refused API calls, by error code", refusals.clone());
        let channel_up = Family::<ChannelLabel, Gauge>::default();
        registry.register(
            "channel_up",
            "1 while a notification channel delivers, 0 while it fails",
            channel_up.clone(),
        );
        let channel_deliveries = Family::<DeliveryLabel, Counter>::default();
        registry.register(
            "channel_deliveries",
            "Notification delivery attempts, by channel and result",
            channel_deliveries.clone(),
        );
        Self { registry, decisions, transitions, pending, time_to_decision, refusals, channel_up, channel_deliveries }
    }
}

impl Metrics {
    pub fn count_decision(&self, outcome: &str) {
        self.decisions.get_or_create(&OutcomeLabel { outcome: outcome.to_owned() }).inc();
    }

    pub fn count_transition(&self, status: &str) {
        self.transitions.get_or_create(&OutcomeLabel { outcome: status.to_owned() }).inc();
    }

    pub fn count_refusal(&self, code: &str) {
        self.refusals.get_or_create(&OutcomeLabel { outcome: code.to_owned() }).inc();
    }

    pub fn set_channel_up(&self, channel: &str, up: bool) {
        self.channel_up.get_or_create(&ChannelLabel { channel: channel.to_owned() }).set(i64::from(up));
    }

    pub fn count_channel_delivery(&self, channel: &str, result: &str) {
        self.channel_deliveries
            .get_or_create(&DeliveryLabel { channel: channel.to_owned(), result: result.to_owned() })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
