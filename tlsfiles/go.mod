module github.com/mindrouter/mindrouter/tlsfiles

go 1.26.0
