package wechat

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFlexInt(t *testing.T) {
	for in, want := range map[string]int64{`7200`: 7200, `"7200"`: 7200, `-1`: -1, `"-1"`: -1, `null`: 0, `" 40001 "`: 40001} {
		var v struct {
			N flexInt `json:"n"`
		}
		assert.NoError(t, json.Unmarshal([]byte(`{"n":`+in+`}`), &v), in)
		assert.EqualValues(t, want, v.N, in)
	}
	for _, in := range []string{`"abc"`, `{}`, `[]`, `true`, `1.5`} {
		var v struct {
			N flexInt `json:"n"`
		}
		assert.Error(t, json.Unmarshal([]byte(`{"n":`+in+`}`), &v), in)
	}
}
