package store

import (
	"context"
	"fmt"
	"time"

	"github.com/mindrouter/mindrouter/ent"
	"github.com/mindrouter/mindrouter/ent/metricpoint"
	"github.com/mindrouter/mindrouter/ent/predicate"
)

// The scopes of a telemetry series.
const (
	ScopeGPU     = "gpu"
	ScopeNode    = "node"
	ScopeBackend = "backend"
)

// historyBatch bounds the rows of one INSERT, well inside SQLite's and MariaDB's
// placeholder limits.
const historyBatch = 400

// SeriesKey names one telemetry series: a scope, the entity's ids within it (zero
// where the scope has none) and a metric.
type SeriesKey struct {
	Scope     string
	NodeID    int64
	GPUIndex  int
	BackendID int64
	Metric    string
}

// MetricPoint is one point of a series: a raw sample (Step 0, Count 1, Sum = Min =
// Max = the value) or a downsampled bucket starting at At.
type MetricPoint struct {
	SeriesKey
	Step  time.Duration
	At    time.Time
	Count int64
	Sum   float64
	Min   float64
	Max   float64
}

// Mean is the point's average value.
func (p MetricPoint) Mean() float64 {
	if p.Count <= 0 {
		return 0
	}
	return p.Sum / float64(p.Count)
}

// Sample returns a raw point of value v at t.
func Sample(key SeriesKey, t time.Time, v float64) MetricPoint {
	return MetricPoint{SeriesKey: key, At: t, Count: 1, Sum: v, Min: v, Max: v}
}

// PointQuery selects points of one tier in [From, To). Empty or zero fields of
// SeriesKey match every value, except Scope and Metric, which are required.
type PointQuery struct {
	SeriesKey
	// AnyNode, AnyGPU and AnyBackend make the matching id a wildcard even when zero
	// would otherwise be asked for literally; a non-zero id always filters.
	AnyNode, AnyGPU, AnyBackend bool
	Step                        time.Duration
	From, To                    time.Time
	// Limit caps the rows (0: no cap).
	Limit int
}

// UpsertMetricPoints writes points in batches; a point whose series, tier and time
// already exist replaces the stored one (downsampling recomputes its recent buckets).
func (s *Store) UpsertMetricPoints(ctx context.Context, points []MetricPoint) error {
	const op = "store metric points"
	for _, p := range points {
		if err := validPoint(p); err != nil {
			return invalid(op, "%v", err)
		}
	}
	for start := 0; start < len(points); start += historyBatch {
		chunk := points[start:min(start+historyBatch, len(points))]
		builders := make([]*ent.MetricPointCreate, len(chunk))
		for i, p := range chunk {
			builders[i] = s.client.MetricPoint.Create().
				SetStepSeconds(int(p.Step / time.Second)).
				SetScope(metricpoint.Scope(p.Scope)).
				SetNodeID(int(p.NodeID)).
				SetGpuIndex(p.GPUIndex).
				SetBackendID(int(p.BackendID)).
				SetMetric(p.Metric).
				SetAt(utc(p.At)).
				SetCount(p.Count).
				SetSum(p.Sum).
				SetMin(p.Min).
				SetMax(p.Max)
		}
		err := s.client.MetricPoint.CreateBulk(builders...).
			OnConflictColumns(metricpoint.FieldScope, metricpoint.FieldMetric, metricpoint.FieldNodeID,
				metricpoint.FieldGpuIndex, metricpoint.FieldBackendID, metricpoint.FieldStepSeconds, metricpoint.FieldAt).
			UpdateNewValues().
			Exec(ctx)
		if err != nil {
			return dbErr(op, err)
		}
	}
	return nil
}

func validPoint(p MetricPoint) error {
	switch {
	case p.Scope != ScopeGPU && p.Scope != ScopeNode && p.Scope != ScopeBackend:
		return fmt.Errorf("unknown scope %q", p.Scope)
	case p.Metric == "" || len(p.Metric) > 48:
		return fmt.Errorf("metric name %q must have 1 to 48 characters", p.Metric)
	case p.Count <= 0:
		return fmt.Errorf("count %d must be positive", p.Count)
	case p.Step < 0 || p.Step%time.Second != 0:
		return fmt.Errorf("step %s must be a non-negative whole number of seconds", p.Step)
	case p.At.IsZero():
		return fmt.Errorf("point of %s/%s has no time", p.Scope, p.Metric)
	}
	return nil
}

// MetricPoints returns the points q selects, ordered by series and time.
func (s *Store) MetricPoints(ctx context.Context, q PointQuery) ([]MetricPoint, error) {
	if q.Scope == "" || q.Metric == "" {
		return nil, invalid("query metric points", "scope and metric are required")
	}
	where := []predicate.MetricPoint{
		metricpoint.ScopeEQ(metricpoint.Scope(q.Scope)),
		metricpoint.Metric(q.Metric),
		metricpoint.StepSeconds(int(q.Step / time.Second)),
		metricpoint.AtGTE(utc(q.From)),
		metricpoint.AtLT(utc(q.To)),
	}
	if q.NodeID != 0 || !q.AnyNode {
		where = append(where, metricpoint.NodeID(int(q.NodeID)))
	}
	if q.GPUIndex != 0 || !q.AnyGPU {
		where = append(where, metricpoint.GpuIndex(q.GPUIndex))
	}
	if q.BackendID != 0 || !q.AnyBackend {
		where = append(where, metricpoint.BackendID(int(q.BackendID)))
	}
	query := s.c(ctx).MetricPoint.Query().Where(where...).
		Order(ent.Asc(metricpoint.FieldNodeID), ent.Asc(metricpoint.FieldGpuIndex),
			ent.Asc(metricpoint.FieldBackendID), ent.Asc(metricpoint.FieldAt))
	if q.Limit > 0 {
		query.Limit(q.Limit)
	}
	rows, err := query.All(ctx)
	if err != nil {
		return nil, dbErr("query metric points", err)
	}
	out := make([]MetricPoint, len(rows))
	for i, r := range rows {
		out[i] = MetricPoint{
			SeriesKey: SeriesKey{Scope: string(r.Scope), NodeID: int64(r.NodeID), GPUIndex: r.GpuIndex,
				BackendID: int64(r.BackendID), Metric: r.Metric},
			Step: time.Duration(r.StepSeconds) * time.Second, At: utc(r.At),
			Count: r.Count, Sum: r.Sum, Min: r.Min, Max: r.Max,
		}
	}
	return out, nil
}

// TierPoints returns every point of one tier in [from, to), of every series, ordered
// by time. Downsampling reads its source tier with it.
func (s *Store) TierPoints(ctx context.Context, step time.Duration, from, to time.Time) ([]MetricPoint, error) {
	rows, err := s.c(ctx).MetricPoint.Query().
		Where(metricpoint.StepSeconds(int(step/time.Second)), metricpoint.AtGTE(utc(from)), metricpoint.AtLT(utc(to))).
		Order(ent.Asc(metricpoint.FieldAt)).
		All(ctx)
	if err != nil {
		return nil, dbErr("read metric tier", err)
	}
	out := make([]MetricPoint, len(rows))
	for i, r := range rows {
		out[i] = MetricPoint{
			SeriesKey: SeriesKey{Scope: string(r.Scope), NodeID: int64(r.NodeID), GPUIndex: r.GpuIndex,
				BackendID: int64(r.BackendID), Metric: r.Metric},
			Step: step, At: utc(r.At), Count: r.Count, Sum: r.Sum, Min: r.Min, Max: r.Max,
		}
	}
	return out, nil
}

// DeleteMetricPointsBefore removes the points of one tier older than before and
// returns how many went.
func (s *Store) DeleteMetricPointsBefore(ctx context.Context, step time.Duration, before time.Time) (int, error) {
	n, err := s.c(ctx).MetricPoint.Delete().
		Where(metricpoint.StepSeconds(int(step/time.Second)), metricpoint.AtLT(utc(before))).
		Exec(ctx)
	return n, dbErr("prune metric points", err)
}
