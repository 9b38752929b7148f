//! Names as label sequences with RFC 1035 4.1.4 compression, shared by DNS
//! (mDNS, LLMNR) and the NetBIOS name service: a pointer may only go
//! backwards and be followed a bounded number of times, so a name cannot
//! loop; every label is bounded by the message.

/// Why a name could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelError {
    Truncated,
    /// A forward or looping pointer, a reserved length, or a label the
    /// caller refused.
    Bad,
}

/// Walks the name at offset `at` of `msg`, handing each label to `label`
/// in order; returns the offset just past the name where it was written
/// (after its first pointer, if it has one).
pub fn walk<'a>(
    msg: &'a [u8],
    mut at: usize,
    max_pointers: usize,
    mut label: impl FnMut(&'a [u8]) -> Result<(), LabelError>,
) -> Result<usize, LabelError> {
    let mut after = None;
    let mut pointers = 0;
    loop {
        let len = *msg.get(at).ok_or(LabelError::Truncated)?;
        match len {
            0 => return Ok(after.unwrap_or(at + 1)),
            l if l & 0xc0 == 0xc0 => {
                let lo = *msg.get(at + 1).ok_or(LabelError::Truncated)?;
                let target = usize::from(u16::from_be_bytes([l & 0x3f, lo]));
                pointers += 1;
                if pointers > max_pointers || target >= at {
                    return Err(LabelError::Bad);
                }
                after.get_or_insert(at + 2);
                at = target;
            }
            l if l & 0xc0 != 0 => return Err(LabelError::Bad),
            l => {
                let end = at + 1 + usize::from(l);
                label(msg.get(at + 1..end).ok_or(LabelError::Truncated)?)?;
                at = end;
            }
        }
    }
}
