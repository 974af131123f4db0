module github.com/mindrouter/mindrouter/deploy/grafana

go 1.26.0
