"""Writes src/data/embedded/: the first 2,000 training and 500 test images (with labels) of Fashion-MNIST, as gzipped
IDX files, from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist). Fashion-MNIST is
Copyright (c) 2017 Zalando SE, MIT licence. Run: python3 scripts/make_embedded_fashion_mnist.py
"""
import gzip
import os
import struct

SRC = '/usr/share/datasets/fashion-mnist'
OUT = os.path.join(os.path.dirname(__file__), '..', 'src', 'data', 'embedded')


def subset(name, count, kind):
    with gzip.open(os.path.join(SRC, name), 'rb') as f:
        data = f.read()
    if kind == 'images':
        magic, n, rows, cols = struct.unpack('>IIII', data[:16])
        header = struct.pack('>IIII', magic, count, rows, cols)
        body = data[16:16 + count * rows * cols]
    else:
        magic, n = struct.unpack('>II', data[:8])
        header = struct.pack('>II', magic, count)
        body = data[8:8 + count]
    assert count <= n
    # mtime=0 keeps the bytes reproducible
    with gzip.GzipFile(os.path.join(OUT, name), 'wb', compresslevel=9, mtime=0) as g:
        g.write(header + body)


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    subset('train-images-idx3-ubyte.gz', 2000, 'images')
    subset('train-labels-idx1-ubyte.gz', 2000, 'labels')
    subset('t10k-images-idx3-ubyte.gz', 500, 'images')
    subset('t10k-labels-idx1-ubyte.gz', 500, 'labels')
