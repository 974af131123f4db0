// Package system owns the whole service's on/off switch: administrators take
// MindRouter offline for maintenance with a message and bring it back. The
// switch's position lives in the settings table (so a restarted or newly
// elected control plane finds it again) and in memory (so admission reads it
// with one atomic load and no database call on the hot path). Admission
// refuses every request while the switch is off; this package refuses
// nothing itself and knows no client dialect.
package system
