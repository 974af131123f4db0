package ctl

import adminv1 "github.com/mindrouter/mindrouter/proto/gen/mindrouter/admin/v1"

const alertSvc = "/mindrouter.admin.v1.AlertService/"

// alertsResource is `mindrouterctl alerts`.
var alertsResource = resource{name: "alerts", short: "The fleet's alerts (docs/operations.md)", aliases: []string{"alert"}, ops: []op{
	{verb: "list", short: "List alerts, newest first (--state active|all, --kind, --limit)", method: alertSvc + "ListAlerts",
		req: msg[adminv1.ListAlertsRequest](), resp: msg[adminv1.ListAlertsResponse](), list: "alerts",
		cols: []string{"id", "kind", "subject", "severity", "first_seen", "last_seen", "cleared_at", "message"}},
}}
