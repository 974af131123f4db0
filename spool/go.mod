module github.com/mindrouter/mindrouter/spool

go 1.26.0
