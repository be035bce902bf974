package whatsapp

import (
	"context"
	"fmt"

	"go.mau.fi/whatsmeow"
)

// Connect implements [Session]. An unlinked session dials WhatsApp and
// returns the first QR code (phone empty) or a pairing code for phone; a
// background goroutine keeps reading the QR channel and reports later codes,
// success and expiry as state changes. A linked session returns its state,
// starting to reconnect when it is not connected.
func (s *whatsmeowSession) Connect(ctx context.Context, phone string) (*Pairing, error) {
	s.mu.Lock()
	linked := s.jid != ""
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrNotConnected
	}
	if linked {
		switch s.State() {
		case StateConnected:
			return &Pairing{State: StateConnected}, nil
		case StateDisconnected:
			s.startReconnect()
		}
		return &Pairing{State: s.State()}, nil
	}
	// A pairing already under way starts over with a fresh QR channel.
	s.stopPairing()
	cli := s.client()
	pairCtx, pairCancel := context.WithCancel(s.ctx)
	qr, err := cli.GetQRChannel(pairCtx)
	if err != nil {
		pairCancel()
		return nil, fmt.Errorf("QR channel: %w", err)
	}
	fail := func(err error) (*Pairing, error) {
		pairCancel()
		cli.Disconnect()
		return nil, err
	}
	s.engine.awaitVersion(ctx)
	if err := cli.ConnectContext(s.ctx); err != nil {
		return fail(fmt.Errorf("%w: dial WhatsApp: %v", ErrNotConnected, err))
	}
	wait, cancel := context.WithTimeout(ctx, s.engine.pairTimeout)
	defer cancel()
	var first whatsmeow.QRChannelItem
	select {
	case first = <-qr:
	case <-wait.Done():
		return fail(fmt.Errorf("%w: no QR code from WhatsApp: %v", ErrNotConnected, wait.Err()))
	}
	if first.Event != whatsmeow.QRChannelEventCode {
		return fail(fmt.Errorf("%w: %s", ErrNotConnected, qrItemReason(first)))
	}
	s.consumeQR(pairCtx, pairCancel, qr)
	p := &Pairing{State: StateConnecting}
	if phone == "" {
		p.QRCode = first.Code
		s.qr(first.Code)
		s.report(StateConnecting, "waiting for QR code scan")
		return p, nil
	}
	code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, PairClientDisplayName)
	if err != nil {
		s.stopPairing()
		cli.Disconnect()
		return nil, fmt.Errorf("pair phone: %w", err)
	}
	p.PairingCode = code
	s.report(StateConnecting, "waiting for pairing code entry")
	return p, nil
}

// consumeQR reads the rest of a QR channel in the background until it
// closes or pairCtx ends.
func (s *whatsmeowSession) consumeQR(pairCtx context.Context, pairCancel context.CancelFunc, qr <-chan whatsmeow.QRChannelItem) {
	done := make(chan struct{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pairCancel()
		return
	}
	s.pairCancel, s.pairDone = pairCancel, done
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(done)
		defer pairCancel()
		for {
			var item whatsmeow.QRChannelItem
			var ok bool
			select {
			case item, ok = <-qr:
			case <-pairCtx.Done():
				return
			}
			if !ok {
				return
			}
			switch item.Event {
			case whatsmeow.QRChannelEventCode:
				s.qr(item.Code)
				s.report(StateConnecting, "QR code refreshed")
			case whatsmeow.QRChannelSuccess.Event:
				// PairSuccess reports the state and the JID.
			default:
				s.report(StateDisconnected, qrItemReason(item))
			}
		}
	}()
}

// stopPairing ends a running QR pairing and waits for its consumer.
func (s *whatsmeowSession) stopPairing() {
	s.mu.Lock()
	cancel, done := s.pairCancel, s.pairDone
	s.pairCancel, s.pairDone = nil, nil
	cli := s.cli
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	cli.Disconnect()
}

func qrItemReason(item whatsmeow.QRChannelItem) string {
	switch item.Event {
	case whatsmeow.QRChannelTimeout.Event:
		return "QR code expired"
	case whatsmeow.QRChannelEventError:
		return fmt.Sprintf("pairing failed: %v", item.Error)
	case whatsmeow.QRChannelClientOutdated.Event:
		return ReasonClientOutdated
	case whatsmeow.QRChannelErrUnexpectedEvent.Event:
		return "pairing interrupted by an unexpected connection event"
	}
	return "pairing ended: " + item.Event
}

// qr hands a QR code to the OnQR hook (the console's live stream).
func (s *whatsmeowSession) qr(code string) {
	if s.hooks.OnQR != nil {
		s.hooks.OnQR(s.instance, code)
	}
}
