//! `GET /api/v5/openapi.json`: the OpenAPI 3.0 document of everything this server answers
//! (`openapi.json` beside this file, embedded; the CI checks the served API against it with
//! schemathesis).

use super::reply::{self, Resp};

const DOCUMENT: &str = include_str!("openapi.json");

pub fn document() -> Resp {
    reply::body("application/json", DOCUMENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_json_with_every_path() {
        let v: serde_json::Value = serde_json::from_str(super::DOCUMENT).expect("valid JSON");
        assert_eq!(v["openapi"], "3.0.3");
        for p in [
            "/api/v5/clients",
            "/api/v5/clients/{clientid}",
            "/api/v5/clients/{clientid}/subscriptions",
            "/api/v5/subscriptions",
            "/api/v5/topics",
            "/api/v5/publish",
            "/api/v5/retainer/messages",
            "/api/v5/retainer/message/{topic}",
            "/api/v5/nodes",
            "/api/v5/stats",
            "/api/v5/listeners",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(v["paths"][p].is_object(), "{p} missing");
        }
    }
}
