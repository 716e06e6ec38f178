package cloudformation_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const deployDoc = "../../docs/deploy.md"

// shellCommands returns the commands of the doc's sh blocks, continuation lines joined.
func shellCommands(t *testing.T) []string {
	t.Helper()
	var cmds []string
	in := false
	cur := ""
	for _, line := range strings.Split(string(mustRead(t, deployDoc)), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "```sh":
			in = true
			continue
		case trimmed == "```":
			in = false
			continue
		case !in:
			continue
		}
		cur += " " + strings.TrimSuffix(trimmed, "\\")
		if !strings.HasSuffix(trimmed, "\\") {
			cmds = append(cmds, strings.Join(strings.Fields(cur), " "))
			cur = ""
		}
	}
	return cmds
}

var (
	stackNameRE = regexp.MustCompile(`--stack-name (\S+)`)
	templateRE  = regexp.MustCompile(`--template-file (\S+)`)
	overridesRE = regexp.MustCompile(`--parameter-overrides (.*)$`)
	outputKeyRE = regexp.MustCompile(`OutputKey=='([A-Za-z0-9$]+)'`)
	ssmNameRE   = regexp.MustCompile(`aws ssm get-parameter --name (\S+)`)
	logsTailRE  = regexp.MustCompile(`aws logs tail (\S+)`)
)

// TestDeployDocMatchesTemplates: every stack, template, parameter and output docs/deploy.md names
// exists, so the commands there are at least consistent with what the templates define.
func TestDeployDocMatchesTemplates(t *testing.T) {
	t.Parallel()
	cmds := shellCommands(t)
	stacks := map[string]map[string]node{} // stack name -> template
	for _, c := range cmds {
		if !strings.HasPrefix(c, "aws cloudformation deploy") {
			continue
		}
		stack, file := stackNameRE.FindStringSubmatch(c), templateRE.FindStringSubmatch(c)
		if stack == nil || file == nil {
			t.Errorf("deploy command without --stack-name or --template-file: %s", c)
			continue
		}
		path := filepath.Join("../..", file[1])
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		if !strings.Contains(c, "--capabilities CAPABILITY_IAM") {
			t.Errorf("%s: the templates create IAM roles and need --capabilities CAPABILITY_IAM", c)
		}
		tpl := loadTemplate(t, path)
		stacks[stack[1]] = tpl
		if m := overridesRE.FindStringSubmatch(c); m != nil {
			for _, kv := range strings.Fields(m[1]) {
				key, _, _ := strings.Cut(kv, "=")
				if _, ok := section(tpl, "Parameters")[key]; !ok {
					t.Errorf("%s: %s has no parameter %s", stack[1], file[1], key)
				}
			}
		}
	}
	if len(stacks) != 2 {
		t.Fatalf("the doc deploys stacks %v, want the base and the ECS stack", stacks)
	}
	if p := get(stacks["lwa-rotator-ecs"], "Parameters", "BaseStackName", "Default"); p != "lwa-rotator" {
		t.Errorf("ECS BaseStackName defaults to %v, not the doc's base stack name", p)
	}
	checked := 0
	for _, c := range cmds {
		for _, m := range outputKeyRE.FindAllStringSubmatch(c, -1) {
			stack := stackNameRE.FindStringSubmatch(c)
			if stack == nil || stacks[stack[1]] == nil {
				t.Errorf("%s: output %s of an unknown stack", c, m[1])
				continue
			}
			keys := []string{m[1]}
			if m[1] == "$q" { // the DLQ loop
				keys = []string{"ExpiryDeadLetterQueueUrl", "NewSecretDeadLetterQueueUrl"}
			}
			for _, k := range keys {
				checked++
				if _, ok := section(stacks[stack[1]], "Outputs")[k]; !ok {
					t.Errorf("stack %s has no output %s", stack[1], k)
				}
			}
		}
		if m := ssmNameRE.FindStringSubmatch(c); m != nil {
			name := get(stacks["lwa-rotator"], "Resources", "ConfigParameter", "Properties", "Name", "Fn::Sub")
			prefix := get(stacks["lwa-rotator"], "Parameters", "NamePrefix", "Default")
			if want := strings.ReplaceAll(name.(string), "${NamePrefix}", prefix.(string)); m[1] != want {
				t.Errorf("the doc reads parameter %s; the base stack writes %s", m[1], want)
			}
		}
		if m := logsTailRE.FindStringSubmatch(c); m != nil {
			name := get(stacks["lwa-rotator-ecs"], "Resources", "LogGroup", "Properties", "LogGroupName", "Fn::Sub")
			if want := strings.ReplaceAll(name.(string), "${AWS::StackName}", "lwa-rotator-ecs"); m[1] != want {
				t.Errorf("the doc tails %s; the ECS stack logs to %s", m[1], want)
			}
		}
	}
	if checked < 5 {
		t.Errorf("only %d output references checked; the parser is missing the doc's commands", checked)
	}
}
