package stream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLong is returned when a line or event exceeds the reader's limit.
var ErrTooLong = errors.New("stream frame too long")

// DefaultMaxFrame is the frame limit used when a reader is given none: large
// enough for a whole tool call in one Ollama line, small enough to bound memory.
const DefaultMaxFrame = 8 << 20

// lineReader reads lines terminated by "\n" or "\r\n" of at most max bytes.
type lineReader struct {
	br   *bufio.Reader
	max  int
	long []byte // accumulates a line longer than the bufio buffer
}

func newLineReader(r io.Reader, maxFrame int) lineReader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	size := 16 << 10
	if size > maxFrame {
		size = maxFrame
	}
	return lineReader{br: bufio.NewReaderSize(r, size), max: maxFrame}
}

// readLine returns the next line without its terminator. The slice is valid until
// the next call. At the end of input a final unterminated line is returned with a
// nil error; the call after it returns io.EOF.
func (l *lineReader) readLine() ([]byte, error) {
	l.long = l.long[:0]
	for {
		frag, err := l.br.ReadSlice('\n')
		switch {
		case err == nil:
			line := frag
			if len(l.long) > 0 {
				l.long = append(l.long, frag...)
				line = l.long
			}
			if len(line)-1 > l.max {
				return nil, fmt.Errorf("line of %d bytes over %d: %w", len(line)-1, l.max, ErrTooLong)
			}
			return trimEOL(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			l.long = append(l.long, frag...)
			if len(l.long) > l.max {
				return nil, fmt.Errorf("line over %d bytes: %w", l.max, ErrTooLong)
			}
		case errors.Is(err, io.EOF):
			l.long = append(l.long, frag...)
			if len(l.long) == 0 {
				return nil, io.EOF
			}
			if len(l.long) > l.max {
				return nil, fmt.Errorf("line over %d bytes: %w", l.max, ErrTooLong)
			}
			return trimEOL(l.long), nil
		default:
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// NDJSONReader reads newline-delimited JSON values, one per line, skipping blank
// lines. It does not parse the JSON.
type NDJSONReader struct {
	lr lineReader
}

// NewNDJSONReader returns a reader of lines of at most maxLine bytes
// (DefaultMaxFrame when maxLine <= 0).
func NewNDJSONReader(r io.Reader, maxLine int) *NDJSONReader {
	return &NDJSONReader{lr: newLineReader(r, maxLine)}
}

// Next returns the next non-blank line, valid until the next call, or io.EOF.
func (r *NDJSONReader) Next() ([]byte, error) {
	for {
		line, err := r.lr.readLine()
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			return line, nil
		}
	}
}

// Event is one server-sent event.
type Event struct {
	// Name is the "event:" field; empty for the default "message" type.
	Name string
	// ID is the "id:" field.
	ID string
	// Data is the event's data lines joined by "\n"; valid until the next Next.
	Data []byte
}

// SSEReader reads server-sent events as specified by the WHATWG HTML standard,
// with "\n" or "\r\n" line ends. Comments and "retry:" fields are skipped.
type SSEReader struct {
	lr   lineReader
	data []byte
}

// NewSSEReader returns a reader of events of at most maxEvent bytes of data
// (DefaultMaxFrame when maxEvent <= 0).
func NewSSEReader(r io.Reader, maxEvent int) *SSEReader {
	return &SSEReader{lr: newLineReader(r, maxEvent)}
}

// Next returns the next event with data, or io.EOF. Events without a data line
// are skipped, as the standard says. At the end of input, an event whose blank
// line never came is still returned.
func (r *SSEReader) Next() (Event, error) {
	var ev Event
	r.data = r.data[:0]
	hasData := false
	for {
		line, err := r.lr.readLine()
		if errors.Is(err, io.EOF) {
			if hasData {
				ev.Data = r.data
				return ev, nil
			}
			return Event{}, io.EOF
		}
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if hasData {
				ev.Data = r.data
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.lr.max {
				return Event{}, fmt.Errorf("event over %d bytes: %w", r.lr.max, ErrTooLong)
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			ev.Name = string(value)
		case "id":
			ev.ID = string(value)
		}
	}
}
