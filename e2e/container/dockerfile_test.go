package container

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// repoRoot is where the Dockerfile, scripts/ and the build context are.
const repoRoot = "../.."

// instruction is one Dockerfile line as buildkit parses it.
type instruction struct {
	cmd   string   // lower case: from, run, copy, user, …
	args  []string // the words after the keyword (JSON arrays decoded)
	flags []string // --from=build, --interval=30s, …
	json  bool     // exec form
	line  int
}

type stage struct {
	base, name string
	instrs     []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last is the instruction that wins (USER, STOPSIGNAL, ENTRYPOINT, …), or ok false.
func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

func (in instruction) flag(name string) (string, bool) {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parsing the Dockerfile: %v", err)
	}
	var stages []stage
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		if in.cmd == "from" {
			s := stage{base: in.args[0]}
			if len(in.args) == 3 && strings.EqualFold(in.args[1], "as") {
				s.name = in.args[2]
			}
			stages = append(stages, s)
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if len(stages) < 2 {
		t.Fatalf("the Dockerfile has %d stage(s); want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// image is what the Dockerfile's last stage makes: the files and the process settings, read from
// the Dockerfile so the container test runs the image the Dockerfile describes.
type image struct {
	// files maps each path in the image to where it comes from: "stage:PATH" for COPY --from,
	// "context:PATH" for the build context.
	files       map[string]string
	uid, gid    int
	env         []string
	args        []string // ENTRYPOINT then CMD
	stopSignal  string
	healthcheck []string
	// buildOutput is the path the build stage's scripts/build.sh writes the binary to.
	buildStage, buildOutput string
}

func readImage(t *testing.T) image {
	t.Helper()
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	img := image{files: map[string]string{}}

	// The build line: the stage that runs the shared script, and no go build anywhere else.
	for _, s := range stages {
		for _, run := range s.all("run") {
			words := strings.Fields(strings.Join(run.args, " "))
			for i, w := range words {
				if w == "go" && i+1 < len(words) && words[i+1] == "build" {
					t.Errorf("Dockerfile line %d runs go build itself; the image must be built by scripts/build.sh", run.line)
				}
			}
			// Skip leading VAR=value assignments: the command is the first other word.
			i := 0
			for i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-") {
				i++
			}
			if i < len(words) && (words[i] == "./scripts/build.sh" || words[i] == "scripts/build.sh") {
				if img.buildOutput != "" {
					t.Errorf("Dockerfile line %d: scripts/build.sh runs twice", run.line)
				}
				if i+2 != len(words) {
					t.Errorf("Dockerfile line %d: scripts/build.sh takes exactly one argument, the output path", run.line)
				} else {
					img.buildStage, img.buildOutput = s.name, words[i+1]
				}
			}
		}
	}
	if img.buildOutput == "" {
		t.Fatal("no Dockerfile stage runs scripts/build.sh")
	}

	for _, c := range final.all("copy") {
		if len(c.args) != 2 {
			t.Fatalf("Dockerfile line %d: COPY %v: the runtime stage copies one file per line", c.line, c.args)
		}
		from := "context"
		if v, ok := c.flag("from"); ok {
			from = v
		}
		img.files[c.args[1]] = from + ":" + c.args[0]
	}
	if u, ok := final.last("user"); ok {
		uid, gid, found := strings.Cut(u.args[0], ":")
		var err1, err2 error
		img.uid, err1 = strconv.Atoi(uid)
		img.gid, err2 = strconv.Atoi(gid)
		if !found || err1 != nil || err2 != nil {
			t.Errorf("Dockerfile line %d: USER %s: want numeric UID:GID (Kubernetes runAsNonRoot can only check a number)", u.line, u.args[0])
		}
	} else {
		t.Error("the runtime stage sets no USER: it would run as root")
	}
	for _, e := range final.all("env") {
		// buildkit gives each pair as key, value, separator.
		for i := 0; i+1 < len(e.args); i += 3 {
			img.env = append(img.env, e.args[i]+"="+e.args[i+1])
		}
	}
	if ep, ok := final.last("entrypoint"); ok && ep.json {
		img.args = append(img.args, ep.args...)
	}
	if cmd, ok := final.last("cmd"); ok && cmd.json {
		img.args = append(img.args, cmd.args...)
	}
	if s, ok := final.last("stopsignal"); ok {
		img.stopSignal = s.args[0]
	}
	if hc, ok := final.last("healthcheck"); ok && len(hc.args) > 1 && hc.args[0] == "CMD" && hc.json {
		img.healthcheck = hc.args[1:]
	}
	return img
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	img := readImage(t)

	if final.base != "scratch" {
		t.Errorf("the runtime stage starts FROM %s; want scratch (only the files listed in it)", final.base)
	}
	for _, s := range stages[:len(stages)-1] {
		if s.name == img.buildStage {
			// The CA bundle is copied from this stage: it must be Debian's ca-certificates.
			tag := s.base[strings.LastIndex(s.base, ":")+1:]
			if !slices.ContainsFunc([]string{"bookworm", "trixie", "forky"}, func(c string) bool { return strings.HasSuffix(tag, "-"+c) }) {
				t.Errorf("build stage FROM %s: want a Debian-based golang image (the CA bundle comes from Debian's ca-certificates)", s.base)
			}
		}
	}
	if img.uid == 0 || img.gid == 0 {
		t.Errorf("the runtime stage runs as uid %d gid %d; want non-root", img.uid, img.gid)
	}
	if img.stopSignal != "SIGTERM" {
		t.Errorf("STOPSIGNAL %q; want SIGTERM (the daemon drains on it)", img.stopSignal)
	}
	if len(img.args) == 0 {
		t.Fatal("the runtime stage has no exec-form ENTRYPOINT")
	}
	if want := []string{img.args[0], "healthcheck"}; !slices.Equal(img.healthcheck, want) {
		t.Errorf("HEALTHCHECK CMD %q; want the exec form %q (no shell in the image)", img.healthcheck, want)
	}
	if want := []string{"/lwa-rotator", "run"}; !slices.Equal(img.args, want) {
		t.Errorf("ENTRYPOINT+CMD %q; want %q", img.args, want)
	}
	want := map[string]string{
		"/lwa-rotator":                       img.buildStage + ":" + img.buildOutput,
		"/etc/ssl/certs/ca-certificates.crt": img.buildStage + ":/etc/ssl/certs/ca-certificates.crt",
		"/etc/passwd":                        "context:build/container/passwd",
	}
	for dst, src := range img.files {
		if want[dst] != src {
			t.Errorf("the image gets %s from %s; want exactly the binary, the CA bundle and the passwd file", dst, src)
		}
	}
	for dst := range want {
		if _, ok := img.files[dst]; !ok {
			t.Errorf("the image lacks %s", dst)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(repoRoot, "build/container/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !passwdHasUID(string(passwd), img.uid, img.gid) {
		t.Errorf("build/container/passwd has no entry for uid %d gid %d", img.uid, img.gid)
	}
	listen := ""
	for _, e := range img.env {
		if v, ok := strings.CutPrefix(e, "LWA_ROTATOR_LISTEN="); ok {
			listen = v
		}
	}
	if listen == "" {
		t.Error("the image sets no LWA_ROTATOR_LISTEN: the health check would not know the port")
	}
	var exposed []string
	for _, e := range final.all("expose") {
		exposed = append(exposed, e.args...)
	}
	if _, port, _ := strings.Cut(listen, ":"); listen != "" && !slices.Contains(exposed, port) && !slices.Contains(exposed, port+"/tcp") {
		t.Errorf("EXPOSE %v does not include the listen port of LWA_ROTATOR_LISTEN=%s", exposed, listen)
	}
}

func passwdHasUID(passwd string, uid, gid int) bool {
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[2] == strconv.Itoa(uid) && f[3] == strconv.Itoa(gid) {
			return true
		}
	}
	return false
}
