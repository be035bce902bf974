package webhooks

// DeliveryState is the state of an outbox row, modelled on river's job
// states. States are stored and returned by the API, so they never change.
type DeliveryState string

const (
	// StatePending: written with its event, never tried yet (or replayed);
	// due at once.
	StatePending DeliveryState = "pending"
	// StateDelivering: claimed by a worker, whose lease runs until
	// locked_until. A row still delivering after its lease (the worker
	// crashed) is due again.
	StateDelivering DeliveryState = "delivering"
	// StateDelivered: the receiver answered 2xx. Final.
	StateDelivered DeliveryState = "delivered"
	// StateRetryable: an attempt failed in a way that may pass (network
	// error, timeout, 408, 429, 5xx, 3xx); due again at scheduled_at.
	StateRetryable DeliveryState = "retryable"
	// StateFailed: the receiver refused it for good (a 4xx other than 408,
	// 410 and 429) or every attempt failed. Final; a replay makes it pending.
	StateFailed DeliveryState = "failed"
	// StateDiscarded: not sent because its webhook was deleted or disabled
	// (including by a receiver's 410 Gone). Final; a replay makes it pending.
	StateDiscarded DeliveryState = "discarded"
)

// DeliveryStates lists every state, in lifecycle order.
func DeliveryStates() []DeliveryState {
	return []DeliveryState{StatePending, StateDelivering, StateDelivered, StateRetryable, StateFailed, StateDiscarded}
}

// Final reports whether a delivery in this state is never tried again
// unless replayed.
func (s DeliveryState) Final() bool {
	return s == StateDelivered || s == StateFailed || s == StateDiscarded
}

// Valid reports whether s is one of [DeliveryStates].
func (s DeliveryState) Valid() bool {
	for _, v := range DeliveryStates() {
		if s == v {
			return true
		}
	}
	return false
}
