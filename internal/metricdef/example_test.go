package metricdef_test

import (
	"fmt"

	"github.com/catmsim/catmsim/internal/metricdef"
)

func ExampleParse() {
	th, err := metricdef.Parse("ip_bytes_per_device_day{protocol:amqp}", "p(95) < 150KB")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(th.Metric, th.Tags, th.Agg, th.Percentile, th.Op, th.Value)
	fmt.Println(th.Holds(120_000), th.Holds(160_000))

	_, err = metricdef.Parse("d2c_latency", "p(99) < 2KB")
	fmt.Println(err)
	// Output:
	// ip_bytes_per_device_day map[protocol:amqp] p(N) 95 < 153600
	// true false
	// d2c_latency is in seconds, but "p(99) < 2KB" is a size
}
