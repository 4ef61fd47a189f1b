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
    /// The sequence number of the last audit event each SIEM sink delivered.
    pub siem_exported_seq: Family<ChannelLabel, Gauge>,
    /// Calls answered 429 because their source failed authentication too often.
    pub rate_limited: Counter,
    /// Refusals counted into a `refusals.aggregated` event rather than recorded one by one.
    pub refusals_counted: Counter,
    /// (source, actor) pairs the refusal counter remembers (sampled).
    pub refusal_sources: Gauge,
    /// The configured limits, so that dashboards can show them beside the counts.
    pub limit_unauthenticated_burst: Gauge,
    pub limit_unauthenticated_per_minute: Gauge,
    pub limit_refusal_window: Gauge,
    pub limit_tracked_sources: Gauge,
    pub limit_rate_limited_delay_ms: Gauge,
    pub limit_recorded_per_window: Gauge,
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
        let siem_exported_seq = Family::<ChannelLabel, Gauge>::default();
        registry.register(
            "siem_exported_seq",
            "Sequence number of the last audit event a SIEM sink delivered (label channel: siem-NAME)",
            siem_exported_seq.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Calls answered 429 because their source failed authentication too often",
            rate_limited.clone(),
        );
        let refusals_counted = Counter::default();
        registry.register(
            "refusals_counted",
            "Refusals counted into a refusals.aggregated audit event instead of recorded one by one",
            refusals_counted.clone(),
        );
        let refusal_sources = Gauge::default();
        registry.register(
            "refusal_sources",
            "Sources (with their actor) the rate limiter and refusal counter remember (sampled)",
            refusal_sources.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let limit_unauthenticated_burst = gauge(
            &mut registry,
            "limit_unauthenticated_burst",
            "Configured failed authentications one source may make at once (server.unauthenticated_burst)",
        );
        let limit_unauthenticated_per_minute = gauge(
            &mut registry,
            "limit_unauthenticated_per_minute",
            "Configured failed authentications one source may make per minute (server.unauthenticated_per_minute)",
        );
        let limit_refusal_window = gauge(
            &mut registry,
            "limit_refusal_window_seconds",
            "Configured window in which refusals from one source are counted (server.refusal_window)",
        );
        let limit_tracked_sources = gauge(
            &mut registry,
            "limit_tracked_sources",
            "Configured most sources remembered for limits and counts (server.tracked_sources)",
        );
        let limit_rate_limited_delay_ms = gauge(
            &mut registry,
            "limit_rate_limited_delay_ms",
            "Configured hold of a rate-limited call before its 429, in milliseconds (server.rate_limited_delay)",
        );
        let limit_recorded_per_window = gauge(
            &mut registry,
            "limit_refusals_recorded_per_window",
            "Configured refusals of one source recorded one by one per window (server.refusals_recorded_per_window)",
        );
        Self {
            registry,
            decisions,
            transitions,
            pending,
            time_to_decision,
            refusals,
            channel_up,
            channel_deliveries,
            siem_exported_seq,
            rate_limited,
            refusals_counted,
            refusal_sources,
            limit_unauthenticated_burst,
            limit_unauthenticated_per_minute,
            limit_refusal_window,
            limit_tracked_sources,
            limit_rate_limited_delay_ms,
            limit_recorded_per_window,
        }
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

    /// Shows the configured limits.
    pub fn set_limits(&self, limits: &crate::config::LimitsConfig) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.limit_unauthenticated_burst.set(gauge(limits.unauthenticated_burst.into()));
        self.limit_unauthenticated_per_minute.set(gauge(limits.unauthenticated_per_minute.into()));
        self.limit_refusal_window.set(gauge(limits.refusal_window.as_secs()));
        self.limit_tracked_sources.set(gauge(limits.tracked_sources as u64));
        self.limit_rate_limited_delay_ms
            .set(gauge(u64::try_from(limits.rate_limited_delay.as_millis()).unwrap_or(u64::MAX)));
        self.limit_recorded_per_window.set(gauge(limits.recorded_per_window.into()));
    }

    pub fn set_channel_up(&self, channel: &str, up: bool) {
        self.channel_up.get_or_create(&ChannelLabel { channel: channel.to_owned() }).set(i64::from(up));
    }

    pub fn count_channel_delivery(&self, channel: &str, result: &str) {
        self.channel_deliveries
            .get_or_create(&DeliveryLabel { channel: channel.to_owned(), result: result.to_owned() })
            .inc();
    }

    pub fn set_siem_exported(&self, sink: &str, seq: u64) {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.siem_exported_seq.get_or_create(&ChannelLabel { channel: sink.to_owned() }).set(seq);
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
