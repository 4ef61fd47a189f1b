//! Splunk HTTP Event Collector: `POST <url>/services/collector/event` with
//! `Authorization: Splunk <token>` and Splunk's event envelope (`time` in
//! epoch seconds, `host`, `source`, `sourcetype`, optional `index`, and the
//! `event` itself: the exported audit event as JSON).

use serde_json::{json, Value};

use crate::record::Exported;

/// The collector's path under the configured URL.
pub const PATH: &str = "/services/collector/event";
/// The source type events are indexed under.
pub const SOURCETYPE: &str = "countersign:audit";

/// The HEC envelope of one event.
pub fn envelope(record: &Exported, index: Option<&str>) -> Value {
    let millis = record.event.time.as_millis();
    // Seconds with millisecond decimals, as HEC documents `time`.
    let time = format!("{}.{:03}", millis.div_euclid(1000), millis.rem_euclid(1000));
    let mut value = json!({
        "time": serde_json::from_str::<Value>(&time).unwrap_or(Value::Null),
        "host": record.host,
        "source": "countersign",
        "sourcetype": SOURCETYPE,
        "event": record.envelope(),
    });
    if let (Some(index), Some(object)) = (index, value.as_object_mut()) {
        object.insert("index".to_owned(), json!(index));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::exported;

    #[test]
    fn the_envelope_is_splunks() {
        let e = exported(2, "action.cancelled", "agent:bot", r#"{"id":"r1"}"#);
        let v = envelope(&e, Some("audit"));
        assert_eq!(v["time"].to_string(), "1765000000.002");
        assert_eq!(v["sourcetype"], SOURCETYPE);
        assert_eq!(v["index"], "audit");
        assert_eq!(v["event"]["seq"], 2);
    }
}
