// Package ent holds MindRouter's database schema (ent/schema) and the code ent
// generates from it. Only the control plane's store package may import it; everything
// else works with the store's plain domain structs.
package ent

//go:generate go tool ent generate --feature sql/upsert,sql/lock,sql/execquery ./schema
