//! The kubeconfig a client uses to reach a cluster through the gateway:
//! the server is `<gateway>/k8s/<cluster>`, the token the user's (or
//! agent's) countersign key. Written as JSON, which is valid YAML and
//! which kubectl reads as a kubeconfig.

use serde_json::{json, Value};

/// The kubeconfig for `cluster` at `gateway` (its public URL), with
/// `token`, and the gateway's CA (PEM) when it is not publicly trusted.
pub fn kubeconfig(gateway: &str, cluster: &str, token: &str, ca_pem: Option<&[u8]>) -> Value {
    let context = format!("countersign-{cluster}");
    let mut entry = json!({"server": format!("{}/k8s/{cluster}", gateway.trim_end_matches('/'))});
    if let (Some(pem), Some(object)) = (ca_pem, entry.as_object_mut()) {
        use base64::Engine as _;
        object.insert(
            "certificate-authority-data".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(pem)),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": entry}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "preferences": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_is_the_gateway_and_the_token_the_key() {
        let config = kubeconfig("https://gw.example/", "prod", "csk_1", Some(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(config["clusters"][0]["cluster"]["server"], "https://gw.example/k8s/prod");
        assert_eq!(config["users"][0]["user"]["token"], "csk_1");
        assert_eq!(config["current-context"], "countersign-prod");
        assert!(config["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    }
}
