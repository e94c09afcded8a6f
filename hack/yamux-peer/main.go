// Command yamux-peer is Dockyard's test and benchmark peer built on the real hashicorp/yamux.
//
// As a server (-role server) it accepts yamux streams and serves one command per stream; the command is the
// first line the opener writes:
//
//	echo              copy everything back, then close
//	sink              read to EOF, reply "<sha256 hex> <byte count>\n", close
//	discard           read to EOF, reply "<byte count>\n", close (benchmarks: no hashing cost)
//	source N          send N bytes, then their 32-byte sha256, then close
//	halfclose         read to EOF (the opener half-closed), reply "got N\n", close
//	readreset         reply "reading\n", read until an error; remember it for "report"
//	report            reply with the error "readreset" saw, close
//	hold              close at once without reading; StreamCloseTimeout then resets the stream
//	stall             read nothing until a "release" stream arrives, then act as "sink"
//	release           release every stalled stream, close
//	goaway            send Go Away, reply "ok\n", then act as "echo"
//
// As a client (-role client) it runs one scenario (-scenario) against a server that speaks the same commands
// (ours in Python, or this program), prints "OK <details>" and exits 0, or prints the failure and exits 1.
// Scenario "concurrent" holds -streams echo streams open at the same time: every stream is opened and has one
// round trip done before any of them sends the rest of its -bytes.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
)

func main() {
	role := flag.String("role", "server", "server or client")
	addr := flag.String("addr", "127.0.0.1:0", "listen (server) or dial (client) address")
	scenario := flag.String("scenario", "echo", "client scenario")
	size := flag.Int64("bytes", 1<<20, "bytes per transfer")
	streams := flag.Int("streams", 1, "concurrent streams")
	samples := flag.Int("samples", 2000, "round trips to time (rtt scenarios)")
	window := flag.Uint("max-window", 256*1024, "yamux MaxStreamWindowSize")
	closeTimeout := flag.Duration("close-timeout", 300*time.Millisecond, "yamux StreamCloseTimeout")
	flag.Parse()

	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.MaxStreamWindowSize = uint32(*window)
	cfg.StreamCloseTimeout = *closeTimeout
	if err := yamux.VerifyConfig(cfg); err != nil {
		log.Fatal(err)
	}
	switch *role {
	case "server":
		serve(*addr, cfg)
	case "client":
		conn, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		sess, err := yamux.Client(conn, cfg)
		if err != nil {
			log.Fatal(err)
		}
		msg, err := runScenario(sess, *scenario, *size, *streams, *samples)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", *scenario, err)
			os.Exit(1)
		}
		fmt.Printf("OK %s\n", msg)
		_ = sess.Close()
	default:
		log.Fatalf("unknown role %q", *role)
	}
}

// ---------------------------------------------------------------- server

type server struct {
	mu        sync.Mutex
	lastReset string
	release   chan struct{}
}

func serve(addr string, cfg *yamux.Config) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// The test harness reads the port from this first line.
	fmt.Printf("LISTENING %s\n", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			sess, err := yamux.Server(conn, cfg)
			if err != nil {
				log.Print(err)
				return
			}
			srv := &server{release: make(chan struct{})}
			for {
				stream, err := sess.AcceptStream()
				if err != nil {
					return
				}
				go srv.handle(sess, stream)
			}
		}()
	}
}

func readLine(r io.Reader) (string, error) {
	var line []byte
	one := make([]byte, 1)
	for len(line) < 256 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(line), nil
		}
		line = append(line, one[0])
	}
	return "", errors.New("command line too long")
}

func (srv *server) handle(sess *yamux.Session, stream *yamux.Stream) {
	defer stream.Close()
	line, err := readLine(stream)
	if err != nil {
		return
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	switch fields[0] {
	case "echo":
		_, _ = io.CopyBuffer(stream, stream, make([]byte, 256*1024))
	case "sink":
		sink(stream)
	case "discard":
		n, _ := io.CopyBuffer(io.Discard, stream, make([]byte, 256*1024))
		fmt.Fprintf(stream, "%d\n", n)
	case "source":
		n, _ := strconv.ParseInt(fields[1], 10, 64)
		_ = source(stream, n)
	case "halfclose":
		n, _ := io.Copy(io.Discard, stream)
		fmt.Fprintf(stream, "got %d\n", n)
	case "readreset":
		// Say we are reading, so the opener resets only once this handler owns the stream.
		fmt.Fprintf(stream, "reading\n")
		_, err := io.Copy(io.Discard, stream)
		srv.mu.Lock()
		srv.lastReset = fmt.Sprint(err)
		srv.mu.Unlock()
	case "report":
		srv.mu.Lock()
		fmt.Fprintf(stream, "%s\n", srv.lastReset)
		srv.mu.Unlock()
	case "hold":
		return
	case "stall":
		<-srv.release
		sink(stream)
	case "release":
		srv.mu.Lock()
		select {
		case <-srv.release:
		default:
			close(srv.release)
		}
		srv.mu.Unlock()
	case "goaway":
		_ = sess.GoAway()
		fmt.Fprintf(stream, "ok\n")
		_, _ = io.CopyBuffer(stream, stream, make([]byte, 256*1024))
	}
}

func sink(stream io.ReadWriter) {
	h := sha256.New()
	n, _ := io.CopyBuffer(h, stream, make([]byte, 256*1024))
	fmt.Fprintf(stream, "%s %d\n", hex.EncodeToString(h.Sum(nil)), n)
}

var pattern = func() []byte {
	b := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(b)
	return b
}()

func source(w io.Writer, n int64) error {
	h := sha256.New()
	for n > 0 {
		chunk := pattern
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// ---------------------------------------------------------------- client scenarios

func command(sess *yamux.Session, line string) (*yamux.Stream, error) {
	stream, err := sess.OpenStream()
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(stream, line+"\n"); err != nil {
		return nil, err
	}
	return stream, nil
}

func sendSink(sess *yamux.Session, n int64) error {
	stream, err := command(sess, "sink")
	if err != nil {
		return err
	}
	h := sha256.New()
	if err := source(io.MultiWriter(stream, h), n); err != nil {
		return err
	}
	// source() also wrote the digest into the stream and the hash; recompute what the server must see.
	_ = stream.Close()
	reply, err := io.ReadAll(stream)
	if err != nil {
		return err
	}
	want := fmt.Sprintf("%s %d\n", hex.EncodeToString(h.Sum(nil)), n+sha256.Size)
	if string(reply) != want {
		return fmt.Errorf("sink reply %q, want %q", reply, want)
	}
	return nil
}

func sendDiscard(sess *yamux.Session, n int64) error {
	stream, err := command(sess, "discard")
	if err != nil {
		return err
	}
	for left := n; left > 0; {
		chunk := pattern
		if int64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		if _, err := stream.Write(chunk); err != nil {
			return err
		}
		left -= int64(len(chunk))
	}
	_ = stream.Close()
	reply, err := io.ReadAll(stream)
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("%d\n", n); string(reply) != want {
		return fmt.Errorf("discard reply %q, want %q", reply, want)
	}
	return nil
}

func receiveSource(sess *yamux.Session, n int64) error {
	stream, err := command(sess, "source "+strconv.FormatInt(n, 10))
	if err != nil {
		return err
	}
	defer stream.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, io.LimitReader(stream, n), make([]byte, 256*1024)); err != nil {
		return err
	}
	digest := make([]byte, sha256.Size)
	if _, err := io.ReadFull(stream, digest); err != nil {
		return err
	}
	if !bytes.Equal(digest, h.Sum(nil)) {
		return errors.New("source digest mismatch")
	}
	return nil
}

func echoOnce(sess *yamux.Session, payload []byte) error {
	stream, err := command(sess, "echo")
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		_, err := stream.Write(payload)
		if err == nil {
			err = stream.Close()
		}
		errc <- err
	}()
	got, err := io.ReadAll(stream)
	if err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if !bytes.Equal(got, payload) {
		return fmt.Errorf("echo returned %d bytes, want %d identical", len(got), len(payload))
	}
	return nil
}

func parallel(n int, fn func(i int) error) error {
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) { errc <- fn(i) }(i)
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func rtts(stream *yamux.Stream, samples int) ([]time.Duration, error) {
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	out := make([]time.Duration, 0, samples)
	for i := 0; i < samples; i++ {
		start := time.Now()
		if _, err := stream.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(stream, buf); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

// concurrentEcho opens n echo streams and gets one byte echoed on each; only when all n are open at once does
// each send the rest of its payload, half-close and check the echo. It returns how many streams the session
// had open at that moment.
func concurrentEcho(sess *yamux.Session, n int, size int64) (int, error) {
	var opened sync.WaitGroup
	opened.Add(n)
	all := make(chan struct{})
	atBarrier := 0
	go func() {
		opened.Wait()
		atBarrier = sess.NumStreams()
		close(all)
	}()
	err := parallel(n, func(i int) error {
		arrived := false
		defer func() {
			if !arrived {
				opened.Done()
			}
		}()
		payload := make([]byte, size)
		rand.New(rand.NewSource(int64(i))).Read(payload)
		stream, err := command(sess, "echo")
		if err != nil {
			return fmt.Errorf("open %d: %w", i, err)
		}
		defer stream.Close()
		if _, err := stream.Write(payload[:1]); err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(stream, got[:1]); err != nil {
			return fmt.Errorf("stream %d first echo: %w", i, err)
		}
		arrived = true
		opened.Done()
		<-all
		errc := make(chan error, 1)
		go func() {
			_, err := stream.Write(payload[1:])
			if err == nil {
				err = stream.Close()
			}
			errc <- err
		}()
		if _, err := io.ReadFull(stream, got[1:]); err != nil {
			return fmt.Errorf("stream %d echo: %w", i, err)
		}
		if err := <-errc; err != nil {
			return fmt.Errorf("stream %d write: %w", i, err)
		}
		if !bytes.Equal(got, payload) {
			return fmt.Errorf("stream %d: echo differs", i)
		}
		if rest, err := io.ReadAll(stream); err != nil || len(rest) != 0 {
			return fmt.Errorf("stream %d after the echo: %d bytes, %v", i, len(rest), err)
		}
		return nil
	})
	<-all
	return atBarrier, err
}

func pct(d []time.Duration, p float64) float64 {
	return float64(d[int(float64(len(d)-1)*p)].Microseconds())
}

func runScenario(sess *yamux.Session, scenario string, size int64, streams, samples int) (string, error) {
	switch scenario {
	case "echo":
		err := parallel(streams, func(i int) error {
			payload := make([]byte, size)
			rand.New(rand.NewSource(int64(i))).Read(payload)
			return echoOnce(sess, payload)
		})
		return fmt.Sprintf("echo %d streams x %d bytes", streams, size), err
	case "concurrent":
		open, err := concurrentEcho(sess, streams, size)
		return fmt.Sprintf("concurrent streams=%d bytes=%d open_at_once=%d", streams, size, open), err
	case "upload":
		return fmt.Sprintf("upload %d bytes", size), sendSink(sess, size)
	case "download":
		return fmt.Sprintf("download %d bytes", size), receiveSource(sess, size)
	case "throughput":
		// Benchmark: streams concurrent sink transfers of size/streams bytes each.
		start := time.Now()
		err := parallel(streams, func(int) error { return sendDiscard(sess, size/int64(streams)) })
		secs := time.Since(start).Seconds()
		return fmt.Sprintf("throughput streams=%d bytes=%d seconds=%.6f mbps=%.1f", streams, size, secs,
			float64(size)/secs/1e6), err
	case "rtt", "rtt-busy":
		if scenario == "rtt-busy" {
			done := make(chan struct{})
			defer close(done)
			bulk, err := command(sess, "discard")
			if err != nil {
				return "", err
			}
			go func() {
				for {
					select {
					case <-done:
						_ = bulk.Close()
						return
					default:
					}
					if _, err := bulk.Write(pattern); err != nil {
						return
					}
				}
			}()
		}
		stream, err := command(sess, "echo")
		if err != nil {
			return "", err
		}
		d, err := rtts(stream, samples)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s p50_us=%.0f p99_us=%.0f", scenario, pct(d, 0.5), pct(d, 0.99)), nil
	case "halfclose":
		stream, err := command(sess, "halfclose")
		if err != nil {
			return "", err
		}
		if _, err := stream.Write(make([]byte, 1000)); err != nil {
			return "", err
		}
		_ = stream.Close() // FIN: our write side is done, we keep reading
		reply, err := io.ReadAll(stream)
		if err != nil {
			return "", err
		}
		if string(reply) != "got 1000\n" {
			return "", fmt.Errorf("halfclose reply %q", reply)
		}
		if _, err := stream.Write([]byte("x")); !errors.Is(err, yamux.ErrStreamClosed) {
			return "", fmt.Errorf("write after close: %v, want ErrStreamClosed", err)
		}
		return "halfclose", nil
	case "reset":
		// The server resets a "reset" stream right after reading the command.
		stream, err := command(sess, "reset")
		if err != nil {
			return "", err
		}
		_, err = io.ReadAll(stream)
		if !errors.Is(err, yamux.ErrConnectionReset) {
			return "", fmt.Errorf("read on a reset stream: %v, want ErrConnectionReset", err)
		}
		if _, err := stream.Write([]byte("x")); !errors.Is(err, yamux.ErrConnectionReset) {
			return "", fmt.Errorf("write on a reset stream: %v, want ErrConnectionReset", err)
		}
		return "reset", nil
	case "ping":
		d, err := sess.Ping()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("ping rtt_us=%d", d.Microseconds()), nil
	case "goaway":
		stream, err := command(sess, "goaway")
		if err != nil {
			return "", err
		}
		r := bufio.NewReader(stream)
		if line, err := r.ReadString('\n'); err != nil || line != "ok\n" {
			return "", fmt.Errorf("goaway reply %q %v", line, err)
		}
		if _, err := sess.OpenStream(); !errors.Is(err, yamux.ErrRemoteGoAway) {
			return "", fmt.Errorf("open after go away: %v, want ErrRemoteGoAway", err)
		}
		// The stream opened before the go away still works both ways.
		if _, err := stream.Write([]byte("still here")); err != nil {
			return "", err
		}
		_ = stream.Close()
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "still here" {
			return "", fmt.Errorf("echo after go away %q %v", rest, err)
		}
		return "goaway", nil
	case "slow":
		// The server stalls the stream: our writes must stop at the 256 KiB window.
		stream, err := command(sess, "stall")
		if err != nil {
			return "", err
		}
		payload := make([]byte, size)
		rand.New(rand.NewSource(7)).Read(payload)
		_ = stream.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := stream.Write(payload)
		if !errors.Is(err, yamux.ErrTimeout) {
			return "", fmt.Errorf("write to a stalled reader: n=%d err=%v, want a timeout", n, err)
		}
		if n > 256*1024 {
			return "", fmt.Errorf("wrote %d bytes to a stalled reader, window is 256 KiB", n)
		}
		_ = stream.SetWriteDeadline(time.Time{})
		release, err := command(sess, "release")
		if err != nil {
			return "", err
		}
		_, _ = io.ReadAll(release)
		if _, err := stream.Write(payload[n:]); err != nil {
			return "", err
		}
		_ = stream.Close()
		reply, err := io.ReadAll(stream)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(payload)
		want := fmt.Sprintf("%s %d\n", hex.EncodeToString(sum[:]), size)
		if string(reply) != want {
			return "", fmt.Errorf("stalled sink reply %q, want %q", reply, want)
		}
		return fmt.Sprintf("slow held_at=%d", n), nil
	}
	return "", fmt.Errorf("unknown scenario %q", scenario)
}
