"""Site profiles: placeholder, filled in by the split."""

from .loader import (
    PROFILE_SUFFIXES,
    SCHEDULER_STATES,
    LoadedFile,
    Problem,
    Profile,
    ProfileDirectory,
    ProfileError,
    ProfileSet,
    load_profile_file,
    load_profile_text,
    merge_profiles,
    profile_files,
    profile_schema,
)

__all__ = [
    "PROFILE_SUFFIXES",
    "SCHEDULER_STATES",
    "LoadedFile",
    "Problem",
    "Profile",
    "ProfileDirectory",
    "ProfileError",
    "ProfileSet",
    "load_profile_file",
    "load_profile_text",
    "merge_profiles",
    "profile_files",
    "profile_schema",
]
