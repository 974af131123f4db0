// Package energy turns the telemetry history into energy: it integrates power over
// time (trapezoids between samples), attributes each interval's GPU energy to the
// requests that ran on the backend's GPUs in proportion to the weighted tokens each
// processed in the interval (idle energy, an interval with no tokens, is kept
// apart), and reports joules per token, kWh and cost per user, group and model per
// day against configurable commercial per-token prices. docs/energy.md describes
// the method.
//
// It owns the attribution and the reports. It must not write telemetry (package
// history does) or serve the API.
package energy
