package whatsapp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/statusflow/statusflow/internal/store"
	"github.com/statusflow/statusflow/internal/store/storetest"
)

// decryptMedia is WhatsApp's media decryption, written out with the
// standard library: HKDF-SHA256 expands the media key into IV, AES key and
// HMAC key; the last 10 bytes of the file are the HMAC-SHA256 tag over IV
// and ciphertext; the rest is AES-256-CBC with PKCS#7 padding.
func decryptMedia(t *testing.T, mediaKey, file []byte, info string) []byte {
	t.Helper()
	expanded := make([]byte, 112)
	if _, err := io.ReadFull(hkdf.New(sha256.New, mediaKey, nil, []byte(info)), expanded); err != nil {
		t.Fatal(err)
	}
	iv, cipherKey, macKey := expanded[:16], expanded[16:48], expanded[48:80]
	if len(file) < 10+aes.BlockSize {
		t.Fatalf("encrypted file too short: %d bytes", len(file))
	}
	ct, tag := file[:len(file)-10], file[len(file)-10:]
	mac := hmac.New(sha256.New, macKey)
	mac.Write(iv)
	mac.Write(ct)
	if !hmac.Equal(mac.Sum(nil)[:10], tag) {
		t.Fatal("HMAC tag does not match")
	}
	if len(ct)%aes.BlockSize != 0 {
		t.Fatalf("ciphertext length %d is not a whole number of blocks", len(ct))
	}
	block, err := aes.NewCipher(cipherKey)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > aes.BlockSize || !bytes.Equal(plain[len(plain)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		t.Fatalf("bad PKCS#7 padding %d", pad)
	}
	return plain[:len(plain)-pad]
}

func TestEncryptMedia(t *testing.T) {
	t.Parallel()

	kinds := []struct {
		kind MediaKind
		info whatsmeow.MediaType
	}{
		{MediaImage, whatsmeow.MediaImage},
		{MediaVideo, whatsmeow.MediaVideo},
		{MediaAudio, whatsmeow.MediaAudio},
	}
	// Sizes around the AES block and EncryptMedia's 64 KiB read buffer.
	sizes := []int{0, 1, 15, 16, 17, 64*1024 - 1, 64 * 1024, 64*1024 + 1, 300_000}

	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			t.Parallel()
			for _, n := range sizes {
				plain := make([]byte, n)
				rand.Read(plain)

				up, err := EncryptMedia(bytes.NewReader(plain), k.kind)
				if err != nil {
					t.Fatalf("%d bytes: %v", n, err)
				}
				wantSHA := sha256.Sum256(plain)
				if !bytes.Equal(up.FileSHA256, wantSHA[:]) {
					t.Errorf("%d bytes: FileSHA256 is not the plaintext's hash", n)
				}
				if up.FileLength != uint64(n) {
					t.Errorf("%d bytes: FileLength = %d", n, up.FileLength)
				}
				if len(up.MediaKey) != 32 {
					t.Fatalf("%d bytes: media key of %d bytes", n, len(up.MediaKey))
				}

				// whatsmeow's own encryption with the same media key yields the
				// file whose hash EncryptMedia reported, byte for byte...
				expanded := make([]byte, 112)
				io.ReadFull(hkdf.New(sha256.New, up.MediaKey, nil, []byte(k.info)), expanded)
				var enc bytes.Buffer
				plainSHA, encSHA, length, _, err := cbcutil.EncryptStream(expanded[16:48], expanded[:16], expanded[48:80], bytes.NewReader(plain), &enc)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(encSHA, up.FileEncSHA256) || !bytes.Equal(plainSHA, up.FileSHA256) || length != up.FileLength {
					t.Fatalf("%d bytes: EncryptMedia's hashes differ from whatsmeow's encryption", n)
				}
				fileSHA := sha256.Sum256(enc.Bytes())
				if !bytes.Equal(fileSHA[:], up.FileEncSHA256) {
					t.Fatalf("%d bytes: FileEncSHA256 is not the encrypted file's hash", n)
				}
				// ...and that file decrypts back to the plaintext with the media key.
				if got := decryptMedia(t, up.MediaKey, enc.Bytes(), string(k.info)); !bytes.Equal(got, plain) {
					t.Fatalf("%d bytes: decrypted media differs from the plaintext", n)
				}
			}
		})
	}

	t.Run("FreshKeyEachTime", func(t *testing.T) {
		t.Parallel()
		a, err := EncryptMedia(bytes.NewReader([]byte("same")), MediaImage)
		if err != nil {
			t.Fatal(err)
		}
		b, err := EncryptMedia(bytes.NewReader([]byte("same")), MediaImage)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.MediaKey, b.MediaKey) || bytes.Equal(a.FileEncSHA256, b.FileEncSHA256) {
			t.Fatal("two uploads share a media key or ciphertext")
		}
		if !bytes.Equal(a.FileSHA256, b.FileSHA256) {
			t.Fatal("the plaintext hash should not depend on the key")
		}
	})
}

func TestSandbox_SendStatusSameIDTwice(t *testing.T) {
	t.Parallel()
	st := storetest.New(t, store.SQLite)
	sess, err := NewSandbox(st).Open(context.Background(), OpenParams{Instance: "sales"})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := BuildText(TextStatus{Text: "once"})
	for i := 0; i < 2; i++ {
		if _, err := sess.SendStatus(context.Background(), "3EB0SAME", msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n, _ := st.SandboxStatusCount(context.Background(), "sales"); n != 1 {
		t.Fatalf("recorded %d statuses, want 1", n)
	}
}

// The sandbox records the exact message in protobuf's binary form; rows
// recorded before, as protojson, still read back the same.
func TestSandbox_RecordedMessage(t *testing.T) {
	t.Parallel()
	st := storetest.New(t, store.SQLite)
	ctx := context.Background()
	sess, err := NewSandbox(st).Open(ctx, OpenParams{Instance: "sales"})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := BuildText(TextStatus{Text: "recorded", BackgroundColor: "#128C7E", Font: "serif"})
	if _, err := sess.SendStatus(ctx, "3EB0NEW", msg); err != nil {
		t.Fatal(err)
	}
	legacyJSON, _ := protojson.Marshal(msg)
	if err := st.SandboxStatusInsert(ctx, &store.SandboxStatus{Instance: "sales", MessageID: "3EB0OLD", Type: "text", Message: string(legacyJSON)}); err != nil {
		t.Fatal(err)
	}
	list, err := st.SandboxStatusList(ctx, "sales", 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d, %v", len(list), err)
	}
	for _, rec := range list {
		got, err := RecordedMessage(rec)
		if err != nil || !proto.Equal(got, msg) {
			t.Fatalf("%s: recorded %v (%v), want %v", rec.MessageID, got, err, msg)
		}
		js, err := RecordedMessageJSON(rec)
		var back waE2E.Message
		if err != nil || protojson.Unmarshal(js, &back) != nil || !proto.Equal(&back, msg) {
			t.Fatalf("%s: as JSON %s (%v)", rec.MessageID, js, err)
		}
	}
}
