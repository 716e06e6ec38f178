package cloudformation_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/config"
)

// daemonDrain is internal/daemon's default DrainTimeout: SIGTERM waits this long for the
// message in hand.
const daemonDrain = 30 * time.Second

// entrypoint is the binary the image runs (the Dockerfile's last ENTRYPOINT), so the health
// check calls the same path.
func entrypoint(t *testing.T) string {
	t.Helper()
	var last string
	for _, line := range strings.Split(string(mustRead(t, "../../Dockerfile")), "\n") {
		if strings.HasPrefix(line, "ENTRYPOINT ") {
			last = strings.TrimPrefix(line, "ENTRYPOINT ")
		}
	}
	var argv []string
	if err := json.Unmarshal([]byte(last), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile ENTRYPOINT %q is not an exec-form list", last)
	}
	return argv[0]
}

func containers(t *testing.T, e *expanded) map[string]map[string]node {
	t.Helper()
	out := map[string]map[string]node{}
	for _, c := range strs(get(e.resource(t, "TaskDefinition"), "Properties", "ContainerDefinitions")) {
		m := c.(map[string]node)
		out[fmt.Sprint(m["Name"])] = m
	}
	return out
}

func TestECSTaskRunsTheDaemonAsDesigned(t *testing.T) {
	t.Parallel()
	bin := entrypoint(t)
	envNames := setOf("LWA_ROTATOR_CONFIG")
	for _, v := range config.Env {
		envNames[v.Name] = true
	}
	for name, e := range expandAll(t, ecsFile, ecsScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			td := props(e.resource(t, "TaskDefinition"))
			if td["NetworkMode"] != "awsvpc" || fmt.Sprint(td["RequiresCompatibilities"]) != "[FARGATE]" {
				t.Errorf("NetworkMode %v, RequiresCompatibilities %v; want awsvpc on FARGATE", td["NetworkMode"], td["RequiresCompatibilities"])
			}
			if got := mustJSON(td["TaskRoleArn"]); got != `{"Fn::ImportValue":{"Fn::Sub":"${BaseStackName}-DaemonRoleArn"}}` {
				t.Errorf("TaskRoleArn %s, want the base stack's DaemonRole", got)
			}
			cs := containers(t, e)
			if len(cs) != 2 {
				t.Fatalf("containers %v, want lwa-rotator and config-writer", slices.Sorted(func(yield func(string) bool) {
					for k := range cs {
						if !yield(k) {
							return
						}
					}
				}))
			}
			for cname, c := range cs {
				if c["ReadonlyRootFilesystem"] != true {
					t.Errorf("%s: root filesystem is writable", cname)
				}
				if got := mustJSON(get(c, "LinuxParameters", "Capabilities")); got != `{"Drop":["ALL"]}` {
					t.Errorf("%s: capabilities %s, want all dropped", cname, got)
				}
				if get(c, "LogConfiguration", "LogDriver") != "awslogs" {
					t.Errorf("%s: log driver %v, want awslogs", cname, get(c, "LogConfiguration", "LogDriver"))
				}
				if c["Privileged"] == true {
					t.Errorf("%s is privileged", cname)
				}
			}

			d := cs["lwa-rotator"]
			if d["Essential"] != true {
				t.Error("the daemon container is not essential")
			}
			if uid, _, _ := strings.Cut(fmt.Sprint(d["User"]), ":"); uid != "65532" {
				t.Errorf("daemon runs as %v, want uid 65532 (the image's nonroot)", d["User"])
			}
			if got := mustJSON(d["DependsOn"]); got != `[{"Condition":"SUCCESS","ContainerName":"config-writer"}]` {
				t.Errorf("daemon DependsOn %s; it must start only after the file is written", got)
			}
			if got, want := mustJSON(get(d, "HealthCheck", "Command")), mustJSON([]string{"CMD", bin, "healthcheck"}); got != want {
				t.Errorf("health check %s, want %s (the Dockerfile's ENTRYPOINT)", got, want)
			}
			stop, _ := d["StopTimeout"].(float64)
			if time.Duration(stop)*time.Second <= daemonDrain || stop > 120 {
				t.Errorf("StopTimeout %vs: must exceed the %s drain, and Fargate allows at most 120", stop, daemonDrain)
			}
			env := map[string]node{}
			for _, v := range strs(d["Environment"]) {
				n := fmt.Sprint(get(v, "Name"))
				env[n] = get(v, "Value")
				if !envNames[n] {
					t.Errorf("environment %s is not a variable the daemon reads (config.Env)", n)
				}
			}
			// One value in the task definition would be every task's claim holder name; the
			// daemon's default, the host name, is each task's own.
			if v, ok := env["LWA_ROTATOR_HOLDER"]; ok {
				t.Errorf("LWA_ROTATOR_HOLDER %s set in the task definition: every task would claim under one name", mustJSON(v))
			}
			if got := mustJSON(env["LWA_ROTATOR_LISTEN"]); got != `{"Fn::Sub":"0.0.0.0:${MetricsPort}"}` {
				t.Errorf("LWA_ROTATOR_LISTEN %s, want all interfaces on MetricsPort (the health check reads it too)", got)
			}
			if got := mustJSON(get(d, "PortMappings")); got != `[{"ContainerPort":{"Ref":"MetricsPort"},"Protocol":"tcp"}]` {
				t.Errorf("port mappings %s", got)
			}

			// The file the writer writes is the file the daemon reads, on the one shared volume,
			// read-only for the daemon.
			w := cs["config-writer"]
			if w["Essential"] != false {
				t.Error("config-writer must be non-essential: it exits once the file is written")
			}
			cfgPath := fmt.Sprint(env["LWA_ROTATOR_CONFIG"])
			dir := cfgPath[:strings.LastIndex(cfgPath, "/")]
			if cmd := fmt.Sprint(w["Command"]); !strings.Contains(cmd, "> "+cfgPath) {
				t.Errorf("config-writer command %s does not write %s", cmd, cfgPath)
			}
			mounts := func(c map[string]node) string { return mustJSON(c["MountPoints"]) }
			if got := mounts(d); got != `[{"ContainerPath":"`+dir+`","ReadOnly":true,"SourceVolume":"config"}]` {
				t.Errorf("daemon mounts %s", got)
			}
			if got := mounts(w); got != `[{"ContainerPath":"`+dir+`","ReadOnly":false,"SourceVolume":"config"}]` {
				t.Errorf("config-writer mounts %s", got)
			}
			if got := mustJSON(get(w, "Secrets", 0, "ValueFrom")); !strings.Contains(got, "${BaseStackName}-ConfigParameterName") {
				t.Errorf("config-writer reads %s, want the base stack's configuration parameter", got)
			}
			if got := mustJSON(td["Volumes"]); got != `[{"Name":"config"}]` {
				t.Errorf("volumes %s, want one task-scoped bind mount", got)
			}
		})
	}
}

// TestECSServiceRollsDesiredCountTasks: DesiredCount tasks over the subnets' zones; a deployment
// starts the new tasks before it stops the old ones (overlap is safe) and rolls back a failure.
func TestECSServiceRollsDesiredCountTasks(t *testing.T) {
	t.Parallel()
	wantCount := map[string]string{
		"new cluster, no metrics ingress":                            "1",
		"existing cluster, metrics from a CIDR and a security group": "3",
	}
	for name, e := range expandAll(t, ecsFile, ecsScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := e.params["DesiredCount"]; got != wantCount[name] {
				t.Errorf("DesiredCount resolves to %q, want %q", got, wantCount[name])
			}
			s := props(e.resource(t, "Service"))
			if got := mustJSON(s["DesiredCount"]); got != `{"Ref":"DesiredCount"}` {
				t.Errorf("DesiredCount %s, want the parameter", got)
			}
			if got := mustJSON(s["DeploymentConfiguration"]); got != `{"DeploymentCircuitBreaker":{"Enable":true,"Rollback":true},"MaximumPercent":200,"MinimumHealthyPercent":100}` {
				t.Errorf("DeploymentConfiguration %s, want 100/200 with the circuit breaker rolling back", got)
			}
			if s["LaunchType"] != "FARGATE" {
				t.Errorf("LaunchType %v", s["LaunchType"])
			}
			// Fargate spreads over the zones of the subnets; it refuses placement strategies.
			if got := mustJSON(get(s, "NetworkConfiguration", "AwsvpcConfiguration", "Subnets")); got != `{"Ref":"Subnets"}` {
				t.Errorf("Subnets %s, want the parameter", got)
			}
			for _, k := range []string{"PlacementStrategies", "PlacementConstraints"} {
				if _, has := s[k]; has {
					t.Errorf("%s on a Fargate service", k)
				}
			}
		})
	}
}

// TestECSDesiredCountParameter: one task by default, at least one, at most ten.
func TestECSDesiredCountParameter(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t, ecsFile)
	p := get(tpl, "Parameters", "DesiredCount")
	for key, want := range map[string]string{"Type": "Number", "Default": "1", "MinValue": "1", "MaxValue": "10"} {
		if got := get(p, key); got != want {
			t.Errorf("DesiredCount %s %v, want %s", key, got, want)
		}
	}
	base := ecsScenarios[0].params
	tests := []struct {
		count string
		want  string // "" means accepted
	}{
		{"1", ""},
		{"2", ""},
		{"10", ""},
		{"0", "outside MinValue 1"},
		{"11", "outside MaxValue 10"},
		{"two", "not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.count, func(t *testing.T) {
			t.Parallel()
			params := map[string]string{"DesiredCount": tc.count}
			for k, v := range base {
				params[k] = v
			}
			_, err := expand(tpl, scenario{"DesiredCount=" + tc.count, params})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestECSNetworkIsHTTPSOutAndMetricsIn: the only egress is 443; ingress only on the metrics port
// and only from what the parameters name.
func TestECSNetworkIsHTTPSOutAndMetricsIn(t *testing.T) {
	t.Parallel()
	for name, e := range expandAll(t, ecsFile, ecsScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sg := props(e.resource(t, "SecurityGroup"))
			egress := strs(sg["SecurityGroupEgress"])
			if len(egress) != 1 || get(egress, 0, "IpProtocol") != "tcp" || get(egress, 0, "FromPort") != 443.0 || get(egress, 0, "ToPort") != 443.0 {
				t.Errorf("egress %s, want exactly tcp 443", mustJSON(egress))
			}
			if _, has := sg["SecurityGroupIngress"]; has {
				t.Error("inline ingress rules; ingress belongs to the conditional metrics rules")
			}
			var sources []string
			for rname, r := range e.resources() {
				m := r.(map[string]node)
				if m["Type"] == "AWS::EC2::SecurityGroupEgress" {
					t.Errorf("%s: extra egress rule", rname)
				}
				if m["Type"] != "AWS::EC2::SecurityGroupIngress" {
					continue
				}
				p := props(m)
				if mustJSON(p["FromPort"]) != `{"Ref":"MetricsPort"}` || mustJSON(p["ToPort"]) != `{"Ref":"MetricsPort"}` || p["IpProtocol"] != "tcp" {
					t.Errorf("%s opens %v-%v/%v, want the metrics port only", rname, p["FromPort"], p["ToPort"], p["IpProtocol"])
				}
				for _, k := range []string{"CidrIp", "SourceSecurityGroupId"} {
					if v, ok := p[k]; ok {
						sources = append(sources, mustJSON(v))
					}
				}
			}
			slices.Sort(sources)
			var want []string
			if e.params["MetricsSourceCidr"] != "" {
				want = append(want, `{"Ref":"MetricsSourceCidr"}`)
			}
			if e.params["MetricsSourceSecurityGroup"] != "" {
				want = append(want, `{"Ref":"MetricsSourceSecurityGroup"}`)
			}
			slices.Sort(want)
			if !slices.Equal(sources, want) {
				t.Errorf("metrics ingress from %v, want %v", sources, want)
			}
		})
	}
}

// TestECSImportsWhatTheBaseStackExports: every Fn::ImportValue names an export of lwa-rotator.yaml.
func TestECSImportsWhatTheBaseStackExports(t *testing.T) {
	t.Parallel()
	exports := set{}
	for _, o := range section(loadTemplate(t, baseFile), "Outputs") {
		if n, ok := get(o, "Export", "Name", "Fn::Sub").(string); ok {
			exports[strings.TrimPrefix(n, "${AWS::StackName}-")] = true
		}
	}
	importRE := regexp.MustCompile(`^\$\{BaseStackName\}-([A-Za-z0-9]+)$`)
	n := 0
	for _, e := range expandAll(t, ecsFile, ecsScenarios) {
		var walk func(v node)
		walk = func(v node) {
			if fn, arg, ok := intrinsic(v); ok && fn == "Fn::ImportValue" {
				n++
				s, _ := get(arg, "Fn::Sub").(string)
				m := importRE.FindStringSubmatch(s)
				if m == nil || !exports[m[1]] {
					t.Errorf("imports %s; the base stack exports %v", mustJSON(arg), exports.sorted())
				}
				return
			}
			switch x := v.(type) {
			case map[string]node:
				for _, c := range x {
					walk(c)
				}
			case []node:
				for _, c := range x {
					walk(c)
				}
			}
		}
		walk(e.tpl["Resources"])
	}
	if n == 0 {
		t.Fatal("the ECS stack imports nothing from the base stack")
	}
}

// TestECSExecutionRoleReadsOnlyTheConfiguration: ECS's own role reads the one parameter, and no
// secret: the daemon's permissions stay in the base stack's role.
func TestECSExecutionRoleReadsOnlyTheConfiguration(t *testing.T) {
	t.Parallel()
	for name, e := range expandAll(t, ecsFile, ecsScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := props(e.resource(t, "ExecutionRole"))
			if got := mustJSON(r["ManagedPolicyArns"]); got != `[{"Fn::Sub":"arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}]` {
				t.Errorf("managed policies %s", got)
			}
			statements(r["Policies"], func(path string, s map[string]node) {
				if mustJSON(s["Action"]) != `["ssm:GetParameters"]` {
					t.Errorf("%s: actions %s, want ssm:GetParameters only", path, mustJSON(s["Action"]))
				}
				if !strings.Contains(mustJSON(s["Resource"]), "${BaseStackName}-ConfigParameterName") {
					t.Errorf("%s: Resource %s, want the configuration parameter only", path, mustJSON(s["Resource"]))
				}
			})
		})
	}
}
