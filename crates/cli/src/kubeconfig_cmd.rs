//! `countersign kubeconfig <cluster>`: prints the kubeconfig that points
//! kubectl at the gateway's `/k8s/<cluster>` with the caller's key.

use crate::cli::KubeconfigArgs;
use crate::exit::Exit;

pub fn kubeconfig(args: &KubeconfigArgs) -> anyhow::Result<Exit> {
    if !countersign_k8s::config::valid_name(&args.cluster) {
        anyhow::bail!("`{}` is not a cluster name (lower-case letters, digits, `-` and `_`)", args.cluster);
    }
    let server = args.client.server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        anyhow::bail!("`{server}` is not a gateway URL such as https://countersign.example.com");
    }
    let token = match args.client.token.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => anyhow::bail!("no API token: pass --token or set COUNTERSIGN_TOKEN"),
    };
    let ca = match &args.client.ca_file {
        None => None,
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read the CA file `{}`: {}", path.display(), e.kind()))?,
        ),
    };
    let config = countersign_k8s::kubeconfig::kubeconfig(server, &args.cluster, &token, ca.as_deref());
    println!("{}", serde_json::to_string_pretty(&config)?);
    Ok(Exit::OK)
}
