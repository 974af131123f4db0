package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/modelalias"
	"github.com/mindrouter/mindrouter/ent/modeloverride"
)

// ModelOverride is an administrator's correction of a model name's discovered
// metadata. A nil capability keeps the discovered value; a zero ContextLength
// keeps the discovered window.
type ModelOverride struct {
	Model            string
	Vision           *bool
	Tools            *bool
	Thinking         *bool
	Embeddings       *bool
	StructuredOutput *bool
	ContextLength    int64
	DisplayName      string
	Description      string
	UpdatedAt        time.Time
}

// ModelAlias is a public model name standing for one or more real models.
type ModelAlias struct {
	Name        string
	Targets     []string
	Description string
	UpdatedAt   time.Time
}

// ListModelOverrides returns every override, ordered by model name.
func (s *Store) ListModelOverrides(ctx context.Context) ([]ModelOverride, error) {
	rows, err := s.c(ctx).ModelOverride.Query().Order(ent.Asc(modeloverride.FieldModel)).All(ctx)
	if err != nil {
		return nil, dbErr("list model overrides", err)
	}
	out := make([]ModelOverride, len(rows))
	for i, r := range rows {
		out[i] = overrideFromEnt(r)
	}
	return out, nil
}

// SetModelOverride creates or replaces the override of o.Model.
func (s *Store) SetModelOverride(ctx context.Context, o ModelOverride) (ModelOverride, error) {
	op := fmt.Sprintf("set override of model %q", o.Model)
	if o.Model == "" {
		return ModelOverride{}, invalid(op, "empty model name")
	}
	var saved *ent.ModelOverride
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		cur, err := tx.ModelOverride.Query().Where(modeloverride.Model(o.Model)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			saved, err = tx.ModelOverride.Create().SetModel(o.Model).
				SetNillableVision(o.Vision).SetNillableTools(o.Tools).SetNillableThinking(o.Thinking).
				SetNillableEmbeddings(o.Embeddings).SetNillableStructuredOutput(o.StructuredOutput).
				SetContextLength(o.ContextLength).SetDisplayName(o.DisplayName).SetDescription(o.Description).
				Save(ctx)
			return err
		case err != nil:
			return err
		}
		u := cur.Update().SetContextLength(o.ContextLength).SetDisplayName(o.DisplayName).SetDescription(o.Description)
		setFlag(o.Vision, u.SetVision, u.ClearVision)
		setFlag(o.Tools, u.SetTools, u.ClearTools)
		setFlag(o.Thinking, u.SetThinking, u.ClearThinking)
		setFlag(o.Embeddings, u.SetEmbeddings, u.ClearEmbeddings)
		setFlag(o.StructuredOutput, u.SetStructuredOutput, u.ClearStructuredOutput)
		saved, err = u.Save(ctx)
		return err
	})
	if err != nil {
		return ModelOverride{}, dbErr(op, err)
	}
	return overrideFromEnt(saved), nil
}

// setFlag sets a nillable flag, or clears it when v is nil.
func setFlag[U any](v *bool, set func(bool) U, clear func() U) {
	if v != nil {
		set(*v)
		return
	}
	clear()
}

// DeleteModelOverride removes the override of a model name; ErrNotFound when
// there is none.
func (s *Store) DeleteModelOverride(ctx context.Context, model string) error {
	op := fmt.Sprintf("delete override of model %q", model)
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		cur, err := tx.ModelOverride.Query().Where(modeloverride.Model(model)).Only(ctx)
		if err != nil {
			return err
		}
		return tx.ModelOverride.DeleteOne(cur).Exec(ctx)
	})
	return dbErr(op, err)
}

// ListModelAliases returns every alias, ordered by name.
func (s *Store) ListModelAliases(ctx context.Context) ([]ModelAlias, error) {
	rows, err := s.c(ctx).ModelAlias.Query().Order(ent.Asc(modelalias.FieldName)).All(ctx)
	if err != nil {
		return nil, dbErr("list model aliases", err)
	}
	out := make([]ModelAlias, len(rows))
	for i, r := range rows {
		out[i] = aliasFromEnt(r)
	}
	return out, nil
}

// SetModelAlias creates or replaces an alias.
func (s *Store) SetModelAlias(ctx context.Context, a ModelAlias) (ModelAlias, error) {
	op := fmt.Sprintf("set model alias %q", a.Name)
	if a.Name == "" || len(a.Targets) == 0 {
		return ModelAlias{}, invalid(op, "an alias needs a name and at least one target")
	}
	var saved *ent.ModelAlias
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		cur, err := tx.ModelAlias.Query().Where(modelalias.Name(a.Name)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			saved, err = tx.ModelAlias.Create().SetName(a.Name).SetTargets(a.Targets).SetDescription(a.Description).Save(ctx)
			return err
		case err != nil:
			return err
		}
		saved, err = cur.Update().SetTargets(a.Targets).SetDescription(a.Description).Save(ctx)
		return err
	})
	if err != nil {
		return ModelAlias{}, dbErr(op, err)
	}
	return aliasFromEnt(saved), nil
}

// DeleteModelAlias removes an alias; ErrNotFound when there is none.
func (s *Store) DeleteModelAlias(ctx context.Context, name string) error {
	op := fmt.Sprintf("delete model alias %q", name)
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		cur, err := tx.ModelAlias.Query().Where(modelalias.Name(name)).Only(ctx)
		if err != nil {
			return err
		}
		return tx.ModelAlias.DeleteOne(cur).Exec(ctx)
	})
	return dbErr(op, err)
}

func overrideFromEnt(r *ent.ModelOverride) ModelOverride {
	return ModelOverride{
		Model: r.Model, Vision: r.Vision, Tools: r.Tools, Thinking: r.Thinking, Embeddings: r.Embeddings,
		StructuredOutput: r.StructuredOutput, ContextLength: r.ContextLength,
		DisplayName: r.DisplayName, Description: r.Description, UpdatedAt: r.UpdatedAt,
	}
}

func aliasFromEnt(r *ent.ModelAlias) ModelAlias {
	return ModelAlias{Name: r.Name, Targets: slices.Clone(r.Targets), Description: r.Description, UpdatedAt: r.UpdatedAt}
}
