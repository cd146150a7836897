// Package eventhubs owns the eventhubs-https client: devices that skip IoT
// Hub and post events straight to Azure Event Hubs over its REST API, one
// event (201) or a JSON batch at a time, to
// https://{namespace}/{event hub}/publishers/{device id}/messages, with a SAS
// token of a namespace policy (skn) scoped to https://{namespace}/{event hub}.
//
// Event Hubs has no cloud-to-device path, methods or twin. Every connection
// is dialled through package network; the client adds the payload layer
// (event bodies up).
package eventhubs
