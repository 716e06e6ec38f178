package cloudformation_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestConsumerEventsRuleMatchesThePromotionCall: the EventBridge rule's pattern and its input
// paths name request parameters the UpdateSecretVersionStage call has (CloudTrail records them
// under the API's own names, first letter lowered), it matches only successful moves of
// AWSCURRENT on the configured secret, and the consumers' message carries no caller details.
func TestConsumerEventsRuleMatchesThePromotionCall(t *testing.T) {
	t.Parallel()
	rule, _ := section(loadTemplate(t, consumerEventsFile), "Resources")["PromotedRule"].(map[string]node)
	if rule["Type"] != "AWS::Events::Rule" {
		t.Fatalf("PromotedRule is %v, want an AWS::Events::Rule", rule["Type"])
	}
	p := props(rule)
	detail, _ := get(p, "EventPattern", "detail").(map[string]node)
	if got := strs(get(p, "EventPattern", "source")); len(got) != 1 || got[0] != "aws.secretsmanager" {
		t.Errorf("source %v, want [aws.secretsmanager]", got)
	}
	if got := strs(get(p, "EventPattern", "detail-type")); len(got) != 1 || got[0] != "AWS API Call via CloudTrail" {
		t.Errorf("detail-type %v", got)
	}
	if got := strs(detail["eventName"]); len(got) != 1 || got[0] != "UpdateSecretVersionStage" {
		t.Errorf("eventName %v, want [UpdateSecretVersionStage]", got)
	}
	if got := strs(get(detail, "requestParameters", "versionStage")); len(got) != 1 || got[0] != "AWSCURRENT" {
		t.Errorf("versionStage %v, want [AWSCURRENT]: the AWSPENDING clean-up calls must not notify", got)
	}
	if _, ok := detail["errorCode"]; !ok {
		t.Error("the pattern does not leave out refused calls (errorCode exists: false)")
	}
	in := reflect.TypeFor[secretsmanager.UpdateSecretVersionStageInput]()
	has := func(param string) bool {
		_, ok := in.FieldByName(strings.ToUpper(param[:1]) + param[1:])
		return ok
	}
	params, _ := get(detail, "requestParameters").(map[string]node)
	for k := range params {
		if !has(k) {
			t.Errorf("the pattern matches requestParameters.%s, which UpdateSecretVersionStage does not have", k)
		}
	}
	paths, _ := get(p, "Targets", 0, "InputTransformer", "InputPathsMap").(map[string]node)
	var used []string
	for name, path := range paths {
		s, _ := path.(string)
		if param, ok := strings.CutPrefix(s, "$.detail.requestParameters."); ok {
			if !has(param) {
				t.Errorf("input %s reads %s, which UpdateSecretVersionStage does not have", name, s)
			}
		} else if s != "$.time" {
			t.Errorf("input %s reads %s: the consumers' message carries the promotion's parameters and time only", name, s)
		}
		used = append(used, name)
	}
	slices.Sort(used)
	if !slices.Equal(used, []string{"previousVersionId", "secretId", "time", "versionId"}) {
		t.Errorf("input paths %v", used)
	}
}

// TestConsumersDocShowsTheTemplatesPattern: the EventPattern docs/consumers.md shows is the
// template's, with its example secret in place of the SecretId parameter.
func TestConsumersDocShowsTheTemplatesPattern(t *testing.T) {
	t.Parallel()
	doc := string(mustRead(t, "../../docs/consumers.md"))
	start := strings.Index(doc, "```yaml\nEventPattern:")
	if start < 0 {
		t.Fatal("docs/consumers.md has no ```yaml block starting with EventPattern:")
	}
	block := doc[start+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	shown, err := parseTemplate([]byte(block))
	if err != nil {
		t.Fatalf("the doc's EventPattern is not YAML: %v", err)
	}
	rule, _ := section(loadTemplate(t, consumerEventsFile), "Resources")["PromotedRule"].(map[string]node)
	want := get(props(rule), "EventPattern")
	secretIDs, _ := get(shown, "EventPattern", "detail", "requestParameters", "secretId").([]node)
	if len(secretIDs) != 1 {
		t.Fatalf("the doc's pattern names %v secret ids, want one example", secretIDs)
	}
	// The template's parameter becomes the doc's example.
	get(want, "detail", "requestParameters").(map[string]node)["secretId"] = secretIDs
	if !reflect.DeepEqual(shown["EventPattern"], want) {
		t.Errorf("docs/consumers.md shows\n%v\nthe template has\n%v", shown["EventPattern"], want)
	}
}
