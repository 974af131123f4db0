package ctl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// addRequestFlags adds a string flag per settable request field (snake_case
// becomes kebab-case) except the positional one, and returns them by flag name.
func addRequestFlags(cmd *cobra.Command, req proto.Message, positional string) map[string]protoreflect.FieldDescriptor {
	out := map[string]protoreflect.FieldDescriptor{}
	fields := req.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if string(fd.Name()) == positional || !settable(fd) {
			continue
		}
		name := strings.ReplaceAll(string(fd.Name()), "_", "-")
		help := fieldHelp(fd)
		if fd.Kind() == protoreflect.BoolKind && !fd.IsList() {
			cmd.Flags().Bool(name, false, help)
		} else {
			cmd.Flags().String(name, "", help)
		}
		out[name] = fd
	}
	return out
}

// fillFixed sets the fields a verb decides itself.
func fillFixed(req proto.Message, fixed map[string]string) error {
	m := req.ProtoReflect()
	for name, v := range fixed {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Errorf("internal: %s has no field %s", m.Descriptor().FullName(), name)
		}
		if err := set(m, fd, v); err != nil {
			return err
		}
	}
	return nil
}

func settable(fd protoreflect.FieldDescriptor) bool {
	if fd.IsMap() {
		return false
	}
	if fd.Kind() == protoreflect.MessageKind {
		return !fd.IsList() && fd.Message().FullName() == "google.protobuf.Timestamp"
	}
	return fd.Kind() != protoreflect.BytesKind && (!fd.IsList() || fd.Kind() == protoreflect.StringKind)
}

func fieldHelp(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsList():
		return "comma-separated " + string(fd.Name())
	case fd.Kind() == protoreflect.MessageKind:
		return string(fd.Name()) + " (RFC 3339 time)"
	}
	return string(fd.Name()) + " (" + fd.Kind().String() + ")"
}

// fillRequest sets the positional argument and every flag given.
func fillRequest(cmd *cobra.Command, req proto.Message, fields map[string]protoreflect.FieldDescriptor, positional string, args []string) error {
	m := req.ProtoReflect()
	if positional != "" {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(positional))
		if err := set(m, fd, args[0]); err != nil {
			return fmt.Errorf("%s: %w", strings.ToUpper(positional), err)
		}
	}
	for name, fd := range fields {
		if !cmd.Flags().Changed(name) {
			continue
		}
		v, _ := cmd.Flags().GetString(name)
		if fd.Kind() == protoreflect.BoolKind && !fd.IsList() {
			b, _ := cmd.Flags().GetBool(name)
			v = strconv.FormatBool(b)
		}
		if err := set(m, fd, v); err != nil {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// set parses s for field fd and sets it on m.
func set(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string) error {
	if fd.IsList() {
		l := m.Mutable(fd).List()
		for part := range strings.SplitSeq(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				l.Append(protoreflect.ValueOfString(part))
			}
		}
		return nil
	}
	var v protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		v = protoreflect.ValueOfString(s)
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, not %q", s)
		}
		v = protoreflect.ValueOfBool(b)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return fmt.Errorf("want a whole number, not %q", s)
		}
		v = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, not %q", s)
		}
		v = protoreflect.ValueOfInt64(n)
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, not %q", s)
		}
		if fd.Kind() == protoreflect.FloatKind {
			v = protoreflect.ValueOfFloat32(float32(f))
		} else {
			v = protoreflect.ValueOfFloat64(f)
		}
	case protoreflect.EnumKind:
		ev := fd.Enum().Values().ByName(protoreflect.Name(s))
		if ev == nil {
			return fmt.Errorf("unknown value %q", s)
		}
		v = protoreflect.ValueOfEnum(ev.Number())
	case protoreflect.MessageKind:
		t, err := parseTime(s)
		if err != nil {
			return err
		}
		v = protoreflect.ValueOfMessage(timestamppb.New(t).ProtoReflect())
	default:
		return fmt.Errorf("field %s cannot be set from the command line", fd.Name())
	}
	m.Set(fd, v)
	return nil
}
