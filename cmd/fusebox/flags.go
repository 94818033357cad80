package main

import (
	"strings"

	"github.com/spf13/pflag"
)

// listVarP defines a repeatable string flag (-e A -e B), which collects
// its values in *p in order; the flag is shown as pflag shows a string
// array. It stands in for pflag's StringArrayVarP, whose value renders its
// default through a csv.Writer at definition: pflag asks every value for
// its default text when the flag is defined, and the command tree defines
// about a hundred of these, which took a tenth of the CLI's start-up CPU.
func listVarP(fl *pflag.FlagSet, p *[]string, name, shorthand, usage string) {
	fl.VarP(listValue{p}, name, shorthand, usage)
}

// listValue is the pflag.Value of a listVarP flag; its default is empty.
type listValue struct{ p *[]string }

func (v listValue) Set(s string) error {
	*v.p = append(*v.p, s)
	return nil
}

func (v listValue) Type() string { return "stringArray" }

// String is empty for no values, so that help shows no default, as for
// pflag's own string arrays.
func (v listValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*v.p, ",") + "]"
}
