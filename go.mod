module github.com/durableobjects/durable

go 1.26.0
