// Package scheduler is the built-in scheduler: many events per object on
// one alarm, delivered to webhooks.
package scheduler
