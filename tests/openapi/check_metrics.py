"""Reads /metrics with the official Python client's strict OpenMetrics parser and checks the
families a Prometheus server and its dashboards rely on.

Usage: python3 check_metrics.py FILE (the body of GET /metrics)
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
families = {f.name: f for f in text_string_to_metric_families(text)}
for name, kind in [
    ("supermq_publish_received", "counter"),
    ("supermq_publish_sent", "counter"),
    ("supermq_clients_connected", "gauge"),
    ("supermq_messages_dropped", "counter"),
    ("supermq_listener_connections", "gauge"),
    ("supermq_process_resident_memory_bytes", "gauge"),
    ("supermq_process_cpu_seconds", "counter"),
    ("supermq_deliver_latency_seconds", "histogram"),
]:
    f = families.get(name)
    assert f is not None, f"{name} missing"
    assert f.type == kind, f"{name} is a {f.type}, not a {kind}"
    assert f.documentation, f"{name} has no HELP"
received = [s.value for s in families["supermq_publish_received"].samples if s.name.endswith("_total")]
assert received and received[0] >= 1, f"publish_received: {received}"
reasons = {s.labels.get("reason") for s in families["supermq_messages_dropped"].samples}
assert "queue_full" in reasons, reasons
print(f"/metrics: {len(families)} families parsed by prometheus_client's OpenMetrics parser")
