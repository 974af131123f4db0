// Package web serves MindRouter's pages on the data plane's public port: the
// public cluster status and model catalog, a person's dashboard (usage against
// quota, keys, quota requests, client snippets) and the admin console
// (auditors read-only).
//
// It is stateless: every page reads and changes state through the control
// plane (Control, implemented by cpclient.Web), with the browser's own session
// and CSRF token, so any replica can serve any browser and the control plane
// authorizes every call. It owns the pages' security headers (a strict
// Content-Security-Policy without inline script or style), the CSRF and
// same-origin checks of its forms, and the embedded static files. It must not
// import generated protobuf types (the linter's depguard enforces it).
package web
