package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The completion scripts are generated from the command tree, so they
// list every command, subcommand and flag.

// flagInfo is a flag as the completion scripts need it.
type flagInfo struct {
	name  string
	usage string
	value bool // takes a value
	kind  string
}

// flagsOf returns the flags cmd's setup registers (without the globals).
func flagsOf(cmd *command) []flagInfo {
	if cmd.setup == nil {
		return nil
	}
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(&cli{}, fs)
	return collectFlags(fs)
}

func globalFlags() []flagInfo {
	fs := flag.NewFlagSet("x0x", flag.ContinueOnError)
	(&cli{}).addGlobals(fs)
	return collectFlags(fs)
}

func collectFlags(fs *flag.FlagSet) []flagInfo {
	var out []flagInfo
	fs.VisitAll(func(f *flag.Flag) {
		_, usage := flag.UnquoteUsage(f)
		bf, isBool := f.Value.(interface{ IsBoolFlag() bool })
		fi := flagInfo{name: f.Name, usage: usage, value: !(isBool && bf.IsBoolFlag())}
		switch f.Name {
		case "data-dir":
			fi.kind = "dir"
		case "token-file", "file", "out", "passphrase-file", "x0xd":
			fi.kind = "file"
		}
		out = append(out, fi)
	})
	return out
}

// shellQuote quotes s for bash, zsh and fish in single quotes.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func dashed(fl []flagInfo) string {
	var out []string
	for _, f := range fl {
		out = append(out, "--"+f.name)
	}
	return strings.Join(out, " ")
}

func names(list []*command) string {
	var out []string
	for _, cmd := range list {
		out = append(out, cmd.name)
	}
	return strings.Join(out, " ")
}

// valueFlags returns the flags that take a value, of every command.
func valueFlags() (all, files, dirs []string) {
	seen := map[string]bool{}
	add := func(fl []flagInfo) {
		for _, f := range fl {
			if !f.value || seen[f.name] {
				continue
			}
			seen[f.name] = true
			all = append(all, "--"+f.name, "-"+f.name)
			switch f.kind {
			case "file":
				files = append(files, "--"+f.name, "-"+f.name)
			case "dir":
				dirs = append(dirs, "--"+f.name, "-"+f.name)
			}
		}
	}
	add(globalFlags())
	for _, cmd := range commands {
		add(flagsOf(cmd))
		for _, sub := range cmd.subs {
			add(flagsOf(sub))
		}
	}
	return all, files, dirs
}

// positional returns what a command's positional arguments complete to:
// words, or files.
func positional(cmd *command) (words string, files bool) {
	if slices.Contains(cmd.completeArgs, "files") {
		return "", true
	}
	return strings.Join(cmd.completeArgs, " "), false
}

func cmdCompletion(c *cli, fs *flag.FlagSet) func([]string) error {
	return argsCmd(1, 1, func(args []string) error {
		switch args[0] {
		case "bash":
			return bashCompletion(c.stdout)
		case "zsh":
			return zshCompletion(c.stdout)
		case "fish":
			return fishCompletion(c.stdout)
		}
		return usageError("unknown shell %q: want bash, zsh or fish", args[0])
	})
}

func bashCompletion(w io.Writer) error {
	all, files, dirs := valueFlags()
	var b strings.Builder
	fmt.Fprintf(&b, `# bash completion for x0x: source <(x0x completion bash)
_x0x() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local globals=%s
    local cmd= sub= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            %s) ((i++)) ;;
            --) break ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; elif [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; fi ;;
        esac
    done
    case $prev in
        %s) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        %s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        %s) return ;;
    esac
    local words= flags= files=
    case $cmd in
        '') words=%s ;;
`, shellQuote(dashed(globalFlags())+" --help"), strings.Join(all, "|"), strings.Join(dirs, "|"), strings.Join(files, "|"),
		strings.Join(all, "|"), shellQuote(names(commands)))
	for _, cmd := range commands {
		if cmd.subs == nil {
			words, f := positional(cmd)
			fmt.Fprintf(&b, "        %s) flags=%s words=%s files=%s ;;\n", cmd.name, shellQuote(dashed(flagsOf(cmd))), shellQuote(words), boolWord(f))
			continue
		}
		fmt.Fprintf(&b, "        %s)\n            case $sub in\n                '') words=%s ;;\n", cmd.name, shellQuote(names(cmd.subs)))
		for _, sub := range cmd.subs {
			words, f := positional(sub)
			fmt.Fprintf(&b, "                %s) flags=%s words=%s files=%s ;;\n", sub.name, shellQuote(dashed(flagsOf(sub))), shellQuote(words), boolWord(f))
		}
		b.WriteString("            esac ;;\n")
	}
	b.WriteString(`    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
    elif [[ -n $files ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -F _x0x x0x
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func boolWord(b bool) string {
	if b {
		return "1"
	}
	return "''"
}

// described returns zsh _describe items: 'name:summary'.
func described(list []*command) string {
	var out []string
	for _, cmd := range list {
		out = append(out, shellQuote(cmd.name+":"+strings.ReplaceAll(cmd.summary, ":", `\:`)))
	}
	return strings.Join(out, " ")
}

func zshCompletion(w io.Writer) error {
	all, files, dirs := valueFlags()
	var b strings.Builder
	fmt.Fprintf(&b, `#compdef x0x
# zsh completion for x0x: x0x completion zsh > "${fpath[1]}/_x0x" (or source <(x0x completion zsh))
_x0x() {
    local -a globals flags cands words_
    globals=(%s)
    local cmd= sub= i files=0
    for ((i = 2; i < CURRENT; i++)); do
        case ${words[i]} in
            (%s) ((i++)) ;;
            (--) break ;;
            (-*) ;;
            (*) if [[ -z $cmd ]]; then cmd=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;
        esac
    done
    case ${words[CURRENT-1]} in
        (%s) _files -/; return ;;
        (%s) _files; return ;;
        (%s) return ;;
    esac
    case $cmd in
        ('') cands=(%s) ;;
`, dashed(globalFlags())+" --help", strings.Join(all, "|"), strings.Join(dirs, "|"), strings.Join(files, "|"),
		strings.Join(all, "|"), described(commands))
	for _, cmd := range commands {
		if cmd.subs == nil {
			words, f := positional(cmd)
			fmt.Fprintf(&b, "        (%s) flags=(%s); words_=(%s); files=%d ;;\n", cmd.name, dashed(flagsOf(cmd)), words, boolInt(f))
			continue
		}
		fmt.Fprintf(&b, "        (%s)\n            case $sub in\n                ('') cands=(%s) ;;\n", cmd.name, described(cmd.subs))
		for _, sub := range cmd.subs {
			words, f := positional(sub)
			fmt.Fprintf(&b, "                (%s) flags=(%s); words_=(%s); files=%d ;;\n", sub.name, dashed(flagsOf(sub)), words, boolInt(f))
		}
		b.WriteString("            esac ;;\n")
	}
	b.WriteString(`    esac
    if [[ $PREFIX == -* ]]; then
        compadd -- $flags $globals
    elif (( ${#cands} )); then
        _describe -t commands 'x0x command' cands
    elif (( files )); then
        _files
    else
        compadd -- $words_
    fi
}
if [[ $funcstack[1] == _x0x ]]; then
    _x0x "$@"
else
    compdef _x0x x0x
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func fishCompletion(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# fish completion for x0x: x0x completion fish > ~/.config/fish/completions/x0x.fish\ncomplete -c x0x -f\n")
	fishFlags := func(cond string, fl []flagInfo) {
		for _, f := range fl {
			fmt.Fprintf(&b, "complete -c x0x%s -l %s", cond, f.name)
			if f.value {
				b.WriteString(" -r")
			}
			switch f.kind {
			case "file":
				b.WriteString(" -F")
			case "dir":
				b.WriteString(" -a '(__fish_complete_directories)'")
			}
			fmt.Fprintf(&b, " -d %s\n", fishQuote(f.usage))
		}
	}
	fishFlags("", globalFlags())
	for _, cmd := range commands {
		fmt.Fprintf(&b, "complete -c x0x -n __fish_use_subcommand -a %s -d %s\n", cmd.name, fishQuote(cmd.summary))
		in := fmt.Sprintf(" -n '__fish_seen_subcommand_from %s'", cmd.name)
		if cmd.subs == nil {
			fishFlags(in, flagsOf(cmd))
			if words, files := positional(cmd); files {
				fmt.Fprintf(&b, "complete -c x0x%s -F\n", in)
			} else if words != "" {
				fmt.Fprintf(&b, "complete -c x0x%s -a %s\n", in, fishQuote(words))
			}
			continue
		}
		subs := names(cmd.subs)
		for _, sub := range cmd.subs {
			fmt.Fprintf(&b, "complete -c x0x -n '__fish_seen_subcommand_from %s; and not __fish_seen_subcommand_from %s' -a %s -d %s\n",
				cmd.name, subs, sub.name, fishQuote(sub.summary))
			subIn := fmt.Sprintf(" -n '__fish_seen_subcommand_from %s; and __fish_seen_subcommand_from %s'", cmd.name, sub.name)
			fishFlags(subIn, flagsOf(sub))
			if words, files := positional(sub); files {
				fmt.Fprintf(&b, "complete -c x0x%s -F\n", subIn)
			} else if words != "" {
				fmt.Fprintf(&b, "complete -c x0x%s -a %s\n", subIn, fishQuote(words))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
