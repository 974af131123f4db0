package ctl

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"
)

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: "  "}

// render prints resp as asked.
func render(w io.Writer, format string, o op, resp proto.Message) error {
	raw, err := jsonOpts.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	switch {
	case format == "json":
		_, err = fmt.Fprintln(w, string(raw))
		return err
	case format == "yaml":
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("encode answer: %w", err)
		}
		_, err = w.Write(y)
		return err
	case o.list == "" && o.one == "":
		// No table shape declared: the whole answer, as YAML reads best.
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("encode answer: %w", err)
		}
		_, err = w.Write(y)
		return err
	}
	m := resp.ProtoReflect()
	var rows []protoreflect.Message
	if o.list != "" {
		l := m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(o.list))).List()
		for i := range l.Len() {
			rows = append(rows, l.Get(i).Message())
		}
	} else {
		rows = append(rows, m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(o.one))).Message())
	}
	return table(w, o.cols, rows)
}

func table(w io.Writer, cols []string, rows []protoreflect.Message) error {
	if len(cols) == 0 && len(rows) > 0 {
		fields := rows[0].Descriptor().Fields()
		for i := range fields.Len() {
			cols = append(cols, string(fields.Get(i).Name()))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = strings.ToUpper(c)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(r, c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cell formats one field for a table: times in RFC 3339, lists joined, absent
// optional values as "-".
func cell(m protoreflect.Message, name string) string {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		return "?"
	}
	if fd.HasPresence() && !m.Has(fd) {
		return "-"
	}
	v := m.Get(fd)
	switch {
	case fd.IsList():
		var parts []string
		for i := range v.List().Len() {
			parts = append(parts, fmt.Sprint(v.List().Get(i).Interface()))
		}
		return strings.Join(parts, ",")
	case fd.Kind() == protoreflect.MessageKind:
		if ts, ok := v.Message().Interface().(*timestamppb.Timestamp); ok {
			return ts.AsTime().UTC().Format(time.RFC3339)
		}
		return "…"
	case fd.Kind() == protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
	case fd.Kind() == protoreflect.StringKind:
		s := v.String()
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		return s
	}
	return fmt.Sprint(v.Interface())
}

// parseTime reads an RFC 3339 time or a duration from now (e.g. 720h).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(d), nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time or a duration from now (720h), not %q", s)
}
