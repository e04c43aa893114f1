// Package deploy holds paycenter's operational files: Prometheus recording and alerting
// rules with their promtool unit tests (prometheus/) and a Grafana dashboard (grafana/).
// Its test checks them with promtool and against the metrics paycenter really exports.
package deploy
