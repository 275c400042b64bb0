//! Projects: the caller's projects, their code context and change requests
//! (modifications), and the generation history. `access` decides who may
//! touch a project, for this slice and every slice whose rows belong to one.

pub mod access;
