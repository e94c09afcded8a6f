// service-peer is both ends of hack/bench-service: TCP servers to run in a container, and clients that time them.
//
//	service-peer serve                      listen on :7001 (greet: send "x", then echo), :7002 (source: zeros
//	                                        until the client closes), :7003 (sink: read until EOF, then answer
//	                                        the byte count)
//	service-peer latency ADDR N             N connections one after another: connect + first byte ("x"), in ms
//	service-peer download ADDR CONNS BYTES  CONNS connections at once, each reading BYTES from a source
//	service-peer upload ADDR CONNS BYTES    CONNS connections at once, each writing BYTES to a sink
//	service-peer hold ADDR N                N connections open at the same time on a greeter, each then doing one
//	                                        echo round trip while all are open
//
// Client modes print one JSON object on stdout. A Go client keeps the measuring side's own cost small and equal
// for both paths a benchmark compares.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

const chunk = 256 * 1024

func main() {
	if len(os.Args) < 2 {
		fail("usage: service-peer serve | latency ADDR N | download ADDR CONNS BYTES | upload ADDR CONNS BYTES | hold ADDR N")
	}
	switch os.Args[1] {
	case "serve":
		serve()
	case "latency":
		latency(os.Args[2], atoi(os.Args[3]))
	case "download":
		transfer(os.Args[2], atoi(os.Args[3]), int64(atoi(os.Args[4])), false)
	case "upload":
		transfer(os.Args[2], atoi(os.Args[3]), int64(atoi(os.Args[4])), true)
	case "hold":
		hold(os.Args[2], atoi(os.Args[3]))
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "service-peer:", msg)
	os.Exit(2)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func emit(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail(err.Error())
	}
}

// ---------------------------------------------------------------- servers

func listen(port string, handle func(net.Conn)) {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		fail(err.Error())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				continue
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

func serve() {
	listen("7001", func(c net.Conn) {
		if _, err := c.Write([]byte("x")); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	})
	listen("7002", func(c net.Conn) {
		buf := make([]byte, chunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	listen("7003", func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		_, _ = c.Write([]byte(strconv.FormatInt(n, 10)))
	})
	fmt.Println("SERVING")
	select {}
}

// ---------------------------------------------------------------- clients

func greet(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	one := make([]byte, 1)
	if _, err := io.ReadFull(c, one); err != nil || one[0] != 'x' {
		c.Close()
		return nil, fmt.Errorf("no greeting: %v", err)
	}
	return c, nil
}

func latency(addr string, n int) {
	samples := make([]float64, 0, n)
	errors := 0
	for i := 0; i < n; i++ {
		start := time.Now()
		c, err := greet(addr)
		if err != nil {
			errors++
			continue
		}
		samples = append(samples, float64(time.Since(start).Microseconds())/1000)
		c.Close()
	}
	sort.Float64s(samples)
	pick := func(p float64) float64 {
		if len(samples) == 0 {
			return 0
		}
		return samples[int(p*float64(len(samples)-1))]
	}
	emit(map[string]any{"p50_ms": pick(0.5), "p99_ms": pick(0.99), "samples": len(samples), "errors": errors})
}

func transfer(addr string, conns int, bytes int64, upload bool) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	errors := 0
	var moved int64
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := one(addr, bytes, upload)
			mu.Lock()
			defer mu.Unlock()
			moved += n
			if err != nil {
				errors++
				fmt.Fprintln(os.Stderr, "service-peer:", err)
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	emit(map[string]any{"bytes": moved, "seconds": seconds, "mb_per_s": float64(moved) / seconds / 1e6, "errors": errors})
}

func one(addr string, bytes int64, upload bool) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if !upload {
		n, err := io.CopyN(io.Discard, c, bytes)
		return n, err
	}
	buf := make([]byte, chunk)
	var sent int64
	for sent < bytes {
		size := int64(len(buf))
		if bytes-sent < size {
			size = bytes - sent
		}
		n, err := c.Write(buf[:size])
		sent += int64(n)
		if err != nil {
			return sent, err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return sent, err
	}
	answer, err := io.ReadAll(c)
	if err != nil {
		return sent, err
	}
	if got, _ := strconv.ParseInt(string(answer), 10, 64); got != bytes {
		return sent, fmt.Errorf("the sink received %s of %d bytes", answer, bytes)
	}
	return sent, nil
}

func hold(addr string, n int) {
	var opened, done sync.WaitGroup
	var mu sync.Mutex
	errors, ok := 0, 0
	release := make(chan struct{})
	var firstErr string
	start := time.Now()
	for i := 0; i < n; i++ {
		opened.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			c, err := greet(addr)
			opened.Done()
			if err == nil {
				<-release // every connection is open before any talks or closes
				msg := []byte("ping")
				if _, err = c.Write(msg); err == nil {
					back := make([]byte, len(msg))
					_, err = io.ReadFull(c, back)
				}
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errors++
				if firstErr == "" {
					firstErr = err.Error()
				}
			} else {
				ok++
			}
		}()
	}
	opened.Wait()
	openSeconds := time.Since(start).Seconds()
	close(release)
	done.Wait()
	emit(map[string]any{"ok": ok, "errors": errors, "first_error": firstErr, "open_seconds": openSeconds})
}
