//! A structural check of an `hnsw_rs` 0.3.5 graph dump, run before `hnsw_rs` reads it.
//!
//! `hnsw_rs`'s reader trusts its input: it asserts, unwraps, calls `process::exit` on some read
//! errors, indexes its tables with the neighbour ids it reads and casts the data bytes to `f32`
//! without checking their length. Checksums catch accidental damage; this walk makes sure that
//! even a file whose checksums were recomputed after tampering cannot reach one of those paths:
//! every magic number, count, id, layer, rank, length and value is checked against the manifest
//! and against the rest of the dump.
//!
//! The layout mirrors `hnsw_rs::hnswio` 0.3.5 (full dump mode, native byte order and `usize`):
//!
//! ```text
//! graph: description (magic 0x002a6779, mode u8 = 1, M u8, level scale f64, layers u8 = 16,
//!        ef_construction usize, points usize, dimension usize, distance name, type name)
//!        layers u8; per layer: magic 0x000a676f, count usize, then per point:
//!          magic 0x000a678f, origin id usize, layer u8, rank i32,
//!          16 × (count usize, count × (origin id usize, layer u8, rank i32, distance f32))
//!        entry point: origin id usize, layer u8, rank i32
//! data:  magic 0xa67f0000, dimension usize, then per point in graph order:
//!          magic 0xa67f0000, origin id u64, byte length u64, dimension × f32
//! ```

const MAGIC_DESCRIPTION: u32 = 0x002a_6779;
const MAGIC_LAYER: u32 = 0x000a_676f;
const MAGIC_POINT: u32 = 0x000a_678f;
const MAGIC_DATA: u32 = 0xa67f_0000;
/// `hnsw_rs`'s `NB_LAYER_MAX`: layers per graph and neighbour lists per point.
pub(super) const LAYERS: usize = 16;
/// Bytes of one neighbour entry: origin id, layer, rank, distance.
const NEIGHBOUR_BYTES: usize = std::mem::size_of::<usize>() + 1 + 4 + 4;

/// What the manifest says the dump must hold.
pub(super) struct Expected<'a> {
    pub dim: usize,
    pub m: usize,
    pub ef_construction: usize,
    pub points: usize,
    pub distance: &'a str,
}

/// Why a dump was rejected.
#[derive(Debug)]
pub(super) enum DumpError {
    /// The dump's dimension differs from the manifest's.
    Dimension { manifest: usize, dump: usize },
    /// Anything else, described.
    Corrupt(String),
}

/// A cursor over one of the two dump streams.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    name: &'static str,
}

macro_rules! read_ne {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(&mut self) -> Result<$t, DumpError> {
            let b = self.take(std::mem::size_of::<$t>())?;
            let mut a = [0u8; std::mem::size_of::<$t>()];
            a.copy_from_slice(b);
            Ok(<$t>::from_ne_bytes(a))
        }
    )*};
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], name: &'static str) -> Self {
        Reader { bytes, at: 0, name }
    }

    fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T, DumpError> {
        Err(DumpError::Corrupt(format!(
            "{} at byte {}: {what}",
            self.name, self.at
        )))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DumpError> {
        if self.bytes.len() - self.at < n {
            return self.fail(format!(
                "needs {n} more bytes, has {}",
                self.bytes.len() - self.at
            ));
        }
        self.at += n;
        Ok(&self.bytes[self.at - n..self.at])
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    read_ne!(u8: u8, u32: u32, u64: u64, i32: i32, f32: f32, f64: f64, usize: usize);

    /// Reads a value and fails unless `ok` holds for it.
    fn read_checked<T: std::fmt::Debug + Copy>(
        &mut self,
        read: fn(&mut Self) -> Result<T, DumpError>,
        what: &str,
        ok: impl Fn(T) -> bool,
    ) -> Result<T, DumpError> {
        let value = read(self)?;
        if !ok(value) {
            return self.fail(format!("unexpected {what} {value:?}"));
        }
        Ok(value)
    }

    /// A length-prefixed name that must equal `expected`.
    fn name_eq(&mut self, what: &str, expected: &str) -> Result<(), DumpError> {
        let len = self.read_checked(Self::usize, what, |n| n <= 256)?;
        let name = self.take(len)?;
        if name != expected.as_bytes() {
            return self.fail(format!(
                "{what} {:?}, expected {expected:?}",
                String::from_utf8_lossy(name)
            ));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), DumpError> {
        if self.remaining() != 0 {
            return self.fail(format!("{} unexpected trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

/// A neighbour reference to resolve once every layer's size is known.
struct Link {
    layer: u8,
    rank: u32,
    origin: usize,
}

/// Checks the dump streams `graph` and `data` against `e`.
pub(super) fn check(graph: &[u8], data: &[u8], e: &Expected) -> Result<(), DumpError> {
    let mut g = Reader::new(graph, "hnsw graph");
    let mut d = Reader::new(data, "hnsw data");

    g.read_checked(Reader::u32, "description magic", |v| v == MAGIC_DESCRIPTION)?;
    g.read_checked(Reader::u8, "dump mode", |v| v == 1)?;
    g.read_checked(Reader::u8, "M", |v| v as usize == e.m)?;
    g.read_checked(Reader::f64, "level scale", |v| v.is_finite() && v > 0.0)?;
    g.read_checked(Reader::u8, "layer count", |v| v as usize == LAYERS)?;
    g.read_checked(Reader::usize, "ef_construction", |v| v == e.ef_construction)?;
    g.read_checked(Reader::usize, "point count", |v| v == e.points && v > 0)?;
    let dim = g.usize()?;
    if dim != e.dim {
        return Err(DumpError::Dimension {
            manifest: e.dim,
            dump: dim,
        });
    }
    g.name_eq("distance", e.distance)?;
    g.name_eq("value type", "f32")?;

    d.read_checked(Reader::u32, "data magic", |v| v == MAGIC_DATA)?;
    let data_dim = d.usize()?;
    if data_dim != e.dim {
        return Err(DumpError::Dimension {
            manifest: e.dim,
            dump: data_dim,
        });
    }
    let vector_bytes = dim * 4;

    let n_layers =
        g.read_checked(Reader::u8, "number of layers", |v| v as usize <= LAYERS)? as usize;
    let mut origins: Vec<Vec<usize>> = Vec::with_capacity(n_layers);
    let mut seen = vec![false; e.points];
    let mut total = 0;
    let mut links = Vec::new();
    for layer in 0..n_layers {
        g.read_checked(Reader::u32, "layer magic", |v| v == MAGIC_LAYER)?;
        let count = g.read_checked(Reader::usize, "layer size", |v| v <= e.points - total)?;
        total += count;
        let mut layer_origins = Vec::with_capacity(count);
        for rank in 0..count {
            g.read_checked(Reader::u32, "point magic", |v| v == MAGIC_POINT)?;
            let origin = g.read_checked(Reader::usize, "point id", |v| v < e.points && !seen[v])?;
            seen[origin] = true;
            g.read_checked(Reader::u8, "point layer", |v| v as usize == layer)?;
            g.read_checked(Reader::i32, "point rank", |v| v as usize == rank && v >= 0)?;
            for _ in 0..LAYERS {
                let max = g.remaining() / NEIGHBOUR_BYTES;
                let n = g.read_checked(Reader::usize, "neighbour count", |v| v <= max)?;
                for _ in 0..n {
                    let origin = g.read_checked(Reader::usize, "neighbour id", |v| v < e.points)?;
                    let layer =
                        g.read_checked(Reader::u8, "neighbour layer", |v| (v as usize) < n_layers)?;
                    let rank = g.read_checked(Reader::i32, "neighbour rank", |v| v >= 0)? as u32;
                    g.read_checked(Reader::f32, "neighbour distance", |v| {
                        v.is_finite() && v >= 0.0
                    })?;
                    links.push(Link {
                        layer,
                        rank,
                        origin,
                    });
                }
            }
            d.read_checked(Reader::u32, "vector magic", |v| v == MAGIC_DATA)?;
            d.read_checked(Reader::u64, "vector id", |v| v == origin as u64)?;
            d.read_checked(Reader::u64, "vector byte length", |v| {
                v == vector_bytes as u64
            })?;
            let values = d.take(vector_bytes)?;
            if values
                .chunks_exact(4)
                .any(|b| !f32::from_ne_bytes([b[0], b[1], b[2], b[3]]).is_finite())
            {
                return d.fail(format!("vector {origin} has a non-finite value"));
            }
            layer_origins.push(origin);
        }
        origins.push(layer_origins);
    }
    if total != e.points {
        return g.fail(format!(
            "{total} points in the layers, {} expected",
            e.points
        ));
    }
    let resolves = |layer: usize, rank: usize, origin: usize| {
        origins.get(layer).and_then(|l| l.get(rank)) == Some(&origin)
    };
    let origin = g.usize()?;
    let layer = g.u8()? as usize;
    let rank = g.i32()?;
    if rank < 0 || !resolves(layer, rank as usize, origin) {
        return g.fail(format!(
            "entry point {origin} at layer {layer}, rank {rank} does not exist"
        ));
    }
    if let Some(bad) = links
        .iter()
        .find(|l| !resolves(l.layer as usize, l.rank as usize, l.origin))
    {
        return g.fail(format!(
            "neighbour {} at layer {}, rank {} does not exist",
            bad.origin, bad.layer, bad.rank
        ));
    }
    g.finish()?;
    d.finish()
}
