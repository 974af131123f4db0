// Package powercap reads the host's CPU power from the Linux powercap interface
// (RAPL, /sys/class/powercap): each zone's cumulative energy_uj counter, read twice,
// gives the average power in between; a counter that passed max_energy_range_uj
// wrapped. Package zones (intel-rapl:N, also used by AMD Zen) and their DRAM
// subzones are reported; core and uncore subzones are parts of their package and
// are not added again.
//
// It must not need anything but files: tests point it at a fake tree.
package powercap
